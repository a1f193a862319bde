// Renders a pilot's report.html (perf/offload --out DIR) to a PNG with
// Debian's chromium through playwright-core, for documents that show the
// report's plots as an image (docs/pilot.md, "Reading the report").
// Usage: node perf/pilot/render_report.mjs DIR/report.html OUT.png [width [height]]
// With a height, only the page's top that tall (the summary and the first
// runs); without, the whole page.
// Run from a checkout where tests/browser's npm packages are installed.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [input, output, width = '1400', height] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node perf/pilot/render_report.mjs DIR/report.html OUT.png [width [height]]');
  process.exit(2);
}
const require = createRequire(path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../tests/browser/package.json'));
const { chromium } = require('playwright-core');
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: Number(width), height: Number(height ?? 900) } });
  await page.goto(pathToFileURL(path.resolve(input)).href);
  await page.screenshot({ path: output, fullPage: height === undefined });
} finally {
  await browser.close();
}

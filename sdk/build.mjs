// Builds the package's one ES module (dist/meshedflow.js) with esbuild; the
// types come from `tsc --emitDeclarationOnly` (npm run build does both).
import { build } from 'esbuild';

await build({
  entryPoints: ['src/index.ts'],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  outfile: 'dist/meshedflow.js',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
});

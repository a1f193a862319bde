// perf/compare --scenario tracker: bittorrent-tracker 11.x from npm (installed
// by `npm ci --ignore-scripts` in tests/browser) as a WebSocket tracker only,
// the side-by-side peer of mf-edge (docs/benchmarks.md, "Tracker").
// usage: node perf/bittorrent_tracker_server.mjs NODE_PROJECT_DIR PORT
// The package's main entry loads its WebRTC module (which needs a native
// build); its server entry does not.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [projectDir, portText] = process.argv.slice(2);
const port = Number(portText);
if (!projectDir || !Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node bittorrent_tracker_server.mjs NODE_PROJECT_DIR PORT');
  process.exit(2);
}
// The package exports './server' for `import` only: imported by its file.
const serverFile = path.join(path.resolve(projectDir), 'node_modules', 'bittorrent-tracker', 'server.js');
const { default: Server } = await import(pathToFileURL(serverFile).href);
const server = new Server({ udp: false, http: false, ws: true, stats: false });
server.on('error', (error) => {
  console.error(`bittorrent-tracker: ${error.message}`);
  process.exit(1);
});
server.on('warning', () => {});  // a client's bad request: counted by the load generator, not logged per message
server.listen(port, '127.0.0.1', () => console.log(`bittorrent-tracker listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

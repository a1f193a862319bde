// The bittorrent-tracker client from npm (11.x) for a browser page:
// tests/system/test_tracker_browser.py bundles this file with esbuild and
// run-tracker-pages.mjs loads the bundle (built with process.browser defined
// true: the library asks it to know where it runs). The page's WebRTC is the
// browser's.
import Client from 'bittorrent-tracker/client';

window.TrackerClient = Client;

// Bundled with esbuild by tests/system/test_p2pml_browser.py for the pages:
// hls.js and p2p-media-loader-hlsjs from npm (tests/browser/package.json),
// exactly as a p2p-media-loader deployment loads them, exposed on window.
import Hls from 'hls.js';
import { HlsJsP2PEngine } from 'p2p-media-loader-hlsjs';

window.Hls = Hls;
window.HlsJsP2PEngine = HlsJsP2PEngine;

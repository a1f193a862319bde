"""The offload pilot (perf/offload, docs/pilot.md): a live stream played by
real Chromium viewers through the whole product, measured at the origin."""

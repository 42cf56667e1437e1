"""The dashboard as a real server, driven by Debian's Chromium: shared by the browser tests and
the benchmarks (which must not import the tests)."""

"""``hub bench``: the hub measured against the floor its vendors set, as ratios.

Every figure compares variants measured side by side in one run (interleaved samples, medians
and p99), so it holds on a noisy machine. The vendors are the demo world's simulators, served
by a separate process (``hub.bench.vendors``); the hub under test runs under uvicorn in the
benchmark's own event loop, next to the load client. Scenarios: ``hub.bench.scenarios``;
``hub bench`` calls ``hub.bench.runner.main``.
"""

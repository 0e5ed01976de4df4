"""``hub bench``: the hub measured against the floor its vendors set, as ratios.

Every figure compares variants measured side by side in one run (interleaved samples, medians
and p99), so it holds on a noisy machine. The vendors are the demo world's simulators, served
by a separate process (``bench.vendors``); the hub under test runs under uvicorn in the
benchmark's own event loop, next to the load client. Scenarios: ``bench.scenarios``;
``hub bench`` calls ``bench.runner.main``.

A package beside ``hub`` and ``resolvers``, not inside them: it imports both (and the demo world),
and nothing in ``hub`` imports it but the ``hub bench`` command, when it runs.
``bench.append_cost`` times the audit log's appends alone.
"""

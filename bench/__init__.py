"""Throughput and latency benchmarks (model-only and end-to-end)."""

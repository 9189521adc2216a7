"""Benchmarks (not tests): timings measured and reported as ratios, never asserted."""

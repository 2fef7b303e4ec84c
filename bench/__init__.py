"""Benchmarks (`make bench`): figures printed, never asserted. Not tests."""

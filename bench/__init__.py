"""Benchmarks, each printing its figures beside a floor measured in the same run."""

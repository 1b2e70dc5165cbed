"""Replay and audit for analysts: the events topic read without touching the live system.

- `reading`: a read-only pass over the topic (assigned partitions, no group, no commits), from
  the offsets the broker's time index gives for `--from`.
- `merge`: each team's window of its log, once, and the partitions merged by time (pure).
- `export` and `sinks`: `chorus replay export` to JSONL, CSV or Parquet.
- `state`: `chorus replay state --at`, folded by `streams.projection` (the live projector's code).
- `verify`, `diff` and `live`: `chorus replay verify`, the chains and the rm_* tables.

The command line is `deploy.replay_cli`.
"""

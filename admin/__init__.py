"""The operators' service: inspect, audited support edits, metrics."""

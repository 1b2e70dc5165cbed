"""Settings: the one place that reads the environment (and a local stack's file)."""

"""Settings (the only reader of the environment) and the named fault points they turn on."""

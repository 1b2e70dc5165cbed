"""The local development stack: the broker, database and services `chorus up` starts."""

"""The queries service: read models over HTTP and live queries over server-sent events."""

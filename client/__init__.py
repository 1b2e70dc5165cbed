"""The browser client: its static page and the same-origin entry point to the services."""

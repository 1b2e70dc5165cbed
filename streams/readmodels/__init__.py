"""The read-model store in PostgreSQL: the projector's writes, and `chorus rebuild`."""

"""The stream worker (Faust): deciders turn commands into events, projectors build read models."""

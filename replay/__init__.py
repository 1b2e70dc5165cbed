"""The analysts' offline tool: export, state at an instant and verification of the events log."""

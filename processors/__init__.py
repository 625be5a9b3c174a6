"""The signal pipeline: friction, drift and trajectory stages on finished spans (no network I/O)."""

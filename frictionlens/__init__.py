"""frictionlens: friction, drift and trajectory signals for LLM apps, on OpenTelemetry."""

"""Where signals go: OTLP wiring, the local file store, sampling, alert rules, reports."""

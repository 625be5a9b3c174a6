"""The OTLP receiver that runs the signal pipeline outside the app."""

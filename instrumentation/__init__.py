"""One module per LLM SDK (wrapt wrappers) plus the per-call feature extraction they share."""

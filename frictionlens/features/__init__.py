"""What the instrumentation and the signal stages share: the record of one LLM call and the
features derived from it (salted digests, similarity sketches, cue flags, format checks).

Both layers import this package and neither imports the other: our SDK wrappers fill an
``LLMInvocation`` from SDK objects, the normalizer fills one from another instrumentation's
span, and the same functions turn either into the same signals.
"""

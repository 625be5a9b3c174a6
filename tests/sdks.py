"""What differs between the SDK versions we support, in one place for the tests.

anthropic 2.0 added tracing of its own (the ``open_telemetry`` client option); older releases
have none, so a client is made with the option only where it exists, and tests of how our
spans and the SDK's own coexist are skipped where there is nothing to coexist with.
"""

from __future__ import annotations

import inspect
from typing import Any

import anthropic
import pytest
from anthropic.resources.messages import Messages

ANTHROPIC_HAS_TRACING = (
    "open_telemetry" in inspect.signature(anthropic.Anthropic.__init__).parameters
)

needs_anthropic_tracing = pytest.mark.skipif(
    not ANTHROPIC_HAS_TRACING,
    reason=f"anthropic {anthropic.__version__} has no tracing of its own (added in 2.0)",
)


#: structured outputs (``messages.parse``, ``output_format`` / ``output_config``) came later
ANTHROPIC_HAS_STRUCTURED_OUTPUT = hasattr(Messages, "parse")

needs_anthropic_structured_output = pytest.mark.skipif(
    not ANTHROPIC_HAS_STRUCTURED_OUTPUT,
    reason=f"anthropic {anthropic.__version__} has no structured outputs (messages.parse)",
)


def anthropic_client(cls: Any = anthropic.Anthropic, *, sdk_tracing: Any = False, **kw: Any) -> Any:
    """A client of ``cls`` with the SDK's own tracing set to ``sdk_tracing`` where it exists
    (False, or ``{"tracer_provider": tp}``); older SDKs trace nothing themselves."""
    if ANTHROPIC_HAS_TRACING:
        kw["open_telemetry"] = sdk_tracing
    elif sdk_tracing:
        pytest.skip(f"anthropic {anthropic.__version__} has no tracing of its own (added in 2.0)")
    return cls(**kw)

"""In-process features of one LLM call: what the stages need that must not be exported.

The instrumentation computes them from the text at call time (salted hashes, sketches,
cue flags) and attaches them to the span; the SignalPipeline pops them when the span
ends. Raw text never travels here. The side channel is bounded: spans that never end
cannot make it grow without limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Span

if TYPE_CHECKING:
    import numpy as np

#: spans whose features wait for the span to end, at most
MAX_PENDING = 10_000


@dataclass(slots=True, frozen=True)
class TextFeatures:
    """Compact, irreversible features of one piece of text."""

    digest: int
    """salted 64-bit hash of the normalised text (equality, conversation threading)"""
    chars: int
    sketch: tuple[int, ...] = ()
    """similarity sketch (MinHash of character n-grams); empty when not computed"""
    cues: frozenset[str] = frozenset()
    """phrase cues found in the text, e.g. ``correction``, ``give_up``"""
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)
    """unit-length float32 vector from an optional semantic embedder; None without one.
    Left out of equality and hashing (arrays are neither); like the rest, never exported"""


@dataclass(slots=True, frozen=True)
class MessageFeatures:
    role: str
    text: TextFeatures


@dataclass(slots=True)
class CallFeatures:
    """Everything the stages may read about one call besides its span attributes."""

    messages: tuple[MessageFeatures, ...] = ()
    """the input messages in order (system prompt included)"""
    outputs: tuple[TextFeatures, ...] = ()
    """one per choice; tool-call arguments count as output text"""
    system_digest: int | None = None
    """salted hash of the system prompt / instructions (route inference)"""
    tool_calls: tuple[tuple[str, int], ...] = ()
    """(tool name, salted hash of its arguments) requested by the model"""
    output_vector: object | None = None
    """hashed character n-gram vector of the output (numpy array) for content drift"""
    extra: dict[str, object] = field(default_factory=dict)
    tool_call_ids: tuple[str | None, ...] = ()
    """the provider's id of each ``tool_calls`` entry, same order (None where it has none);
    lets the trajectory stage pair a request with the ``execute_tool`` span that ran it"""


Pending = CallFeatures | Callable[[], CallFeatures]
"""Features, or a function computing them: the instrumentation defers what only the stages
read, so a background pipeline computes it off the app thread."""

_lock = threading.Lock()
_pending: OrderedDict[int, Pending] = OrderedDict()


def attach(span: Span, features: Pending) -> None:
    """Keep ``features`` beside ``span`` until the pipeline sees it end."""
    key = span.get_span_context().span_id
    with _lock:
        _pending[key] = features
        while len(_pending) > MAX_PENDING:
            _pending.popitem(last=False)


def pop(span: ReadableSpan) -> Pending | None:
    ctx = span.context
    if ctx is None:
        return None
    with _lock:
        return _pending.pop(ctx.span_id, None)


def resolve(pending: Pending | None) -> CallFeatures | None:
    """The features themselves, computing deferred ones now."""
    return pending() if callable(pending) else pending


def pending_count() -> int:
    with _lock:
        return len(_pending)

"""Text -> compact, salted, irreversible features, computed once per message at call time.

This is the only place that reads prompt or completion text for the signal stages; what
leaves it are hashes, sketches and cue flags (see processors/features.py).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from frictionlens.processors.features import TextFeatures

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Case-, width- and whitespace-insensitive form used by every text feature."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def digest(text: str, salt: bytes) -> int:
    """Salted 64-bit hash of the normalised text."""
    data = normalise(text).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=salt[:64]).digest(), "big")


def text_features(text: str, salt: bytes) -> TextFeatures:
    return TextFeatures(digest=digest(text, salt), chars=len(text))

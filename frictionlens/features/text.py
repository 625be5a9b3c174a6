"""Text -> compact, salted, irreversible features, computed once per message at call time.

This is the only place that reads prompt or completion text for the signal stages; what
leaves it are hashes, sketches, cue flags and (opt-in) embeddings (frictionlens/features/record.py),
and none of them is exported.

Similarity sketch: one-permutation MinHash over 4-byte shingles of the normalised text
(punctuation dropped), hashed in one vectorised numpy pass. Character n-grams, not words:
on BANKING77 (bench/rephrase.py) exact 4-gram Jaccard separates same-intent pairs better
than word Jaccard (ROC AUC 0.87 vs 0.78; a word+4-gram mix adds nothing). Each of
``SKETCH_BINS`` bins keeps 8 bits of the smallest hash that fell into it (``EMPTY_BIN``
when none did), so a sketch is a tuple of ints in 0..255: Python's cached small ints, and
``bytes(sketch)`` packs one into ``SKETCH_BINS`` bytes.

Why a sketch cannot be turned back into text: it holds SKETCH_BINS bytes however long the
text is; each byte is 8 bits of a salted 64-bit hash of one shingle, shared by millions of
shingles, and which shingle won a bin depends on the secret multiplier. The salt makes
sketches of the same text unrelated across deployments, so they cannot be matched there.
(It is a fast keyed hash, not a cryptographic one: the keyed blake2b ``digest`` is the
strong identifier; sketches never leave the process.)

Cue phrases live in data/cues_<language>.txt (format: cues_en.txt); a ``!phrase`` line
vetoes its section where it matches ("No, thanks" is not a correction). Each phrase is indexed
by its longest uncommon word: a text costs one set test unless it holds an index word, and
a phrase's regex runs only when all its words are present. (A regex alternation per kind
would try every phrase at every position of every text.)

Cost is bounded: the sketch reads at most the first ``SKETCH_HEAD_CHARS`` and the last
``SKETCH_TAIL_CHARS`` characters, cues the first ``CUE_HEAD_CHARS`` and the last
``CUE_TAIL_CHARS``; only ``digest`` reads the whole text (equality must be exact).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Protocol

import numpy as np

from frictionlens.features.record import TextFeatures
from frictionlens.health import count_internal_error

_log = logging.getLogger(__name__)

#: MinHash bins per sketch (one byte each)
SKETCH_BINS = 64
#: bin value meaning "no shingle fell here" (a real 255 is read as empty too: 1 bin in 256)
EMPTY_BIN = 255
#: the sketch reads at most this many characters from the start and from the end
SKETCH_HEAD_CHARS = 1024
SKETCH_TAIL_CHARS = 512
#: cue phrases are looked for in at most this many characters from the start and the end
CUE_HEAD_CHARS = 256
CUE_TAIL_CHARS = 128
#: cue sections of data/cues_*.txt: the first three are the friction kinds of the same name
#: and ``reaction`` a bare "No, …", read in user messages; ``refusal``, ``no_result`` and
#: ``asks`` (the answer asks the user something) are read in answers
CUE_KINDS = (
    "correction",
    "give_up",
    "negative_feedback",
    "reaction",
    "refusal",
    "no_result",
    "asks",
)
#: the cues read in answers (a user may well write "I can't find my card")
ANSWER_CUES = frozenset({"refusal", "no_result", "asks"})

#: ``similarity`` at or above which a new user turn may restate the previous one. Tuned
#: on BANKING77 same- vs different-intent pairs (bench/rephrase.py, best F0.5 of the
#: sketch): precision 0.78, recall 0.60 there. Real restatements after a failed answer
#: share more words than two strangers' queries of one intent, and a follow-up on the
#: same topic also clears this bar: it is evidence to combine, not a verdict.
REPHRASE_THRESHOLD = 0.08
#: ``sketch_similarity`` at or above which two texts are near-duplicates (the same
#: question again, an answer repeating an earlier one). Lexical on purpose: embeddings
#: rate distinct answers on one topic as alike. On BANKING77 (bench/rephrase.py) it
#: catches 96% of lightly edited copies and 0.4% of distinct same-intent pairs.
DUPLICATE_THRESHOLD = 0.70

# --- normalisation -------------------------------------------------------------------

#: whitespace that NFKC keeps (it turns no-break and typographic spaces into " " itself)
_OTHER_WHITESPACE = "\n\t\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u1680\u2028\u2029"


def normalise(text: str) -> str:
    """Case-, width- and whitespace-insensitive form used by every text feature."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    # same as " ".join(folded.split()), which builds an object per word: on long prose
    # that costs about three times these C-level scans
    for char in _OTHER_WHITESPACE:
        if char in folded:
            folded = folded.replace(char, " ")
    while "  " in folded:
        folded = folded.replace("  ", " ")
    return folded.strip()


def digest(text: str, salt: bytes) -> int:
    """Salted 64-bit hash of the normalised text."""
    return _digest(normalise(text), salt)


def _digest(norm: str, salt: bytes) -> int:
    hasher = _keyed(salt)[0].copy()  # a copy skips re-keying: a third of a short text's cost
    hasher.update(norm.encode("utf-8", "surrogatepass"))
    return int.from_bytes(hasher.digest(), "big")


@lru_cache(maxsize=16)
def _keyed(salt: bytes) -> tuple[hashlib.blake2b, np.ndarray]:
    """The salt's keyed blake2b, and its odd 64-bit multiplier: the secret permutation of
    shingle hashes in sketches."""
    raw = hashlib.blake2b(b"frictionlens.sketch", digest_size=8, key=salt[:64]).digest()
    multiplier = np.array(int.from_bytes(raw, "little") | 1, dtype=np.uint64)
    return hashlib.blake2b(digest_size=8, key=salt[:64]), multiplier


def _window(text: str, head: int, tail: int, joiner: str = " ") -> str:
    return text if len(text) <= head + tail else text[:head] + joiner + text[-tail:]


# Punctuation is dropped from shingles and cue words: "card?" and "card" are the same word.
# Apostrophes vanish ("don't" == "dont", as users type it); other marks become spaces.
_ASCII_MARKS = (
    bytes(range(33, 48)) + bytes(range(58, 65)) + bytes(range(91, 97)) + bytes(range(123, 127))
)
_PUNCT_TABLE = bytes.maketrans(_ASCII_MARKS, b" " * len(_ASCII_MARKS))
_UNICODE_MARKS = tuple((c.encode(), b"" if c in "’‘ʼ" else b" ") for c in "’‘ʼ“”„«»¿¡–—•·…")


def _words(norm: str) -> bytes:
    """UTF-8 of ``norm`` with punctuation turned into spaces (runs are left: they cost
    time to collapse and change no ranking, bench/rephrase.py)."""
    data = norm.encode("utf-8", "surrogatepass")
    if not data.isascii():
        for mark, repl in _UNICODE_MARKS:
            if mark in data:
                data = data.replace(mark, repl)
    return data.translate(_PUNCT_TABLE, b"'").strip()


# --- similarity sketch ---------------------------------------------------------------

_SHIFT = 64 - (SKETCH_BINS.bit_length() - 1)
# bin j holds the hashes in [j << _SHIFT, (j + 1) << _SHIFT)
_STARTS = np.array([j << _SHIFT for j in range(SKETCH_BINS)], dtype=np.uint64)
# the largest hash of each bin, added to every text: a bin's minimum when no shingle fell
# there, and its kept byte (bits 32..39, all ones) reads EMPTY_BIN
_SENTINELS = np.array([((j + 1) << _SHIFT) - 1 for j in range(SKETCH_BINS)], dtype=np.uint64)
# the byte of a hash kept per bin: bits 32..39, which depend on every byte of the shingle
_KEPT_BYTE = 4 if sys.byteorder == "little" else 3
_UINT32_LE = np.dtype("<u4")
_CHANCE = 1.0 / 256  # two different shingles keep the same byte by chance


def _sketch(words: bytes, salt: bytes) -> tuple[int, ...]:
    if not words:
        return ()
    padded = b" " + words + b" "
    # every 4-byte shingle as one little-endian uint32: an overlapping view, no copy
    shingles = np.ndarray((len(padded) - 3,), _UINT32_LE, padded, 0, (1,))
    hashes = np.concatenate((shingles * _keyed(salt)[1], _SENTINELS))  # uint64, wraps
    hashes.sort()
    minima = hashes.take(hashes.searchsorted(_STARTS))  # a bin's first hash is its least
    return tuple(minima.tobytes()[_KEPT_BYTE::8])


def sketch_similarity(a: Sequence[int] | bytes, b: Sequence[int] | bytes) -> float:
    """Jaccard estimate in [0, 1] of the shingle sets behind two sketches (tuples or bytes).

    Bins empty in both are left out; the 1-in-256 chance that two different shingles keep
    the same byte is corrected for. Sketches of different sizes or salts compare as 0.
    """
    n = len(a)
    if n == 0 or n != len(b):
        return 0.0
    x = int.from_bytes(bytes(a), "big")
    y = int.from_bytes(bytes(b), "big")
    equal = (x ^ y).to_bytes(n, "big").count(0)
    both_empty = (x & y).to_bytes(n, "big").count(EMPTY_BIN)
    used = n - both_empty
    if used == 0:
        return 0.0
    return min(1.0, max(0.0, ((equal - both_empty) / used - _CHANCE) / (1.0 - _CHANCE)))


# --- optional semantic embeddings --------------------------------------------------------


class Embedder(Protocol):
    """Turns a text into a dense vector whose cosine tracks meaning (e.g. a sentence model).

    Called once per message at call time, on the hot path: it must be fast (tens of µs)
    and must not do I/O. The vector never leaves the process.
    ``frictionlens.features.semantic.WordLlamaEmbedder`` is one.
    """

    def embed(self, text: str) -> np.ndarray:
        """A 1-d float vector for ``text`` (any length; normalised here)."""
        ...


#: ``similarity`` of embeddings is ((1 + cosine) / 2) ** EMBEDDING_EXPONENT: monotone (the
#: ranking is the cosine's), 1.0 for the same direction, and fitted on BANKING77
#: (bench/rephrase.py) so that the tuned cosine threshold lands on REPHRASE_THRESHOLD.
EMBEDDING_EXPONENT = 7.0


def _embedding(embedder: Embedder, text: str) -> np.ndarray | None:
    try:
        vec = np.asarray(embedder.embed(text), dtype=np.float32).ravel()
        norm = float(np.linalg.norm(vec))
    except Exception:  # a broken plug-in must not cost the other features
        count_internal_error("embedder")
        _log.debug("embedder failed", exc_info=True)
        return None
    if not norm or norm != norm:
        return None
    return vec / norm


def similarity(a: TextFeatures, b: TextFeatures) -> float:
    """How alike in meaning two texts are, in [0, 1]; 1.0 for the same normalised text.

    The rescaled embedding cosine when both carry one, else the sketch's Jaccard
    estimate; REPHRASE_THRESHOLD holds for both. Near-duplicates: ``sketch_similarity``.
    """
    if a.digest == b.digest and a.sketch:
        return 1.0
    ea, eb = a.embedding, b.embedding
    if ea is not None and eb is not None and ea.shape == eb.shape:
        cos = float(np.dot(ea, eb))
        return min(1.0, max(0.0, (1.0 + cos) / 2.0)) ** EMBEDDING_EXPONENT
    return sketch_similarity(a.sketch, b.sketch)


# --- cue phrases ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Phrase:
    kind: str
    words: frozenset[bytes]  # every word must be present before the regex runs
    pattern: re.Pattern[str]
    veto: bool = False  # a ``!phrase`` line: where it matches, its section's cue does not count


_TOKEN = re.compile(r"[\w'’]+")


def _phrase_pattern(phrase: str) -> tuple[str, list[str]]:
    """Regex for one data-file phrase: flexible punctuation, spacing and apostrophes."""
    tokens = [t.replace("’", "'") for t in _TOKEN.findall(normalise(phrase.strip("^$")))]
    body = r"\W+".join(re.escape(t).replace("'", "['’]?") for t in tokens)
    if phrase.startswith("^"):
        body = r"^\W*" + body
    else:
        # the word boundary goes after the first literal letters, so that the regex
        # engine can scan for them fast instead of trying every position
        letters = len(tokens[0].split("'")[0])
        body = body[:letters] + rf"(?<!\w.{{{letters}}})" + body[letters:]
    tail = r"(?=\s*(?:[^\w\s]|$))" if phrase.endswith("$") else r"(?!\w)"
    return body + tail, tokens


def _load_cue_files() -> dict[bytes, tuple[_Phrase, ...]]:
    """Every ``data/cues_*.txt``, each phrase indexed by its longest uncommon word.

    Most texts then share no index word with any phrase and cost one set test; the
    phrase's regex only runs when all its words are present.
    """
    phrases: list[_Phrase] = []
    common: set[bytes] = set()
    folder = resources.files("frictionlens.features") / "data"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not (entry.name.startswith("cues_") and entry.name.endswith(".txt")):
            continue
        kind = None
        for lineno, raw in enumerate(entry.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                kind = line[1:-1]
                if kind not in (*CUE_KINDS, "common"):
                    raise ValueError(f"{entry.name}:{lineno}: unknown section {kind!r}")
            elif kind == "common":
                common.update(_words(normalise(line)).split())
            elif kind is None:
                raise ValueError(f"{entry.name}:{lineno}: phrase before any [kind] header")
            else:
                veto = line.startswith("!")
                pattern, tokens = _phrase_pattern(line[1:].strip() if veto else line)
                words = frozenset(_words(t).replace(b" ", b"") for t in tokens)
                phrases.append(_Phrase(kind, words, re.compile(pattern), veto))
    index: dict[bytes, list[_Phrase]] = {}
    for phrase in phrases:
        key = max(sorted(phrase.words - common or phrase.words), key=len)
        index.setdefault(key, []).append(phrase)
    return {word: tuple(items) for word, items in index.items()}


@lru_cache(maxsize=1)
def _cue_index() -> dict[bytes, tuple[_Phrase, ...]]:
    return _load_cue_files()


def _cues(norm: str, words: bytes) -> frozenset[str]:
    index = _cue_index()
    present = words.split()
    hits = index.keys() & present  # one pass over the words
    if not hits:  # the common case: no index word at all
        return frozenset()
    present_set = set(present)
    text = _window(norm, CUE_HEAD_CHARS, CUE_TAIL_CHARS, " | ")
    found: set[str] = set()
    vetoed: set[str] = set()
    for word in hits:
        for phrase in index[word]:
            if (
                phrase.kind not in (vetoed if phrase.veto else found)
                and phrase.words <= present_set
                and phrase.pattern.search(text)
            ):
                (vetoed if phrase.veto else found).add(phrase.kind)
    return frozenset(found - vetoed)


def cues(text: str) -> frozenset[str]:
    """The cue kinds (CUE_KINDS) whose phrases occur in ``text``, in any shipped language."""
    norm = normalise(text)
    return _cues(norm, _words(_window(norm, CUE_HEAD_CHARS, CUE_TAIL_CHARS, " | ")))


# --- all features of one text ------------------------------------------------------------


def text_features(text: str, salt: bytes, embedder: Embedder | None = None) -> TextFeatures:
    """Every feature the stages use, from one pass over ``text``; never raises on odd text."""
    norm = normalise(text)
    words = _words(_window(norm, SKETCH_HEAD_CHARS, SKETCH_TAIL_CHARS))
    cue_words = (
        words
        if len(norm) <= CUE_HEAD_CHARS + CUE_TAIL_CHARS
        else _words(_window(norm, CUE_HEAD_CHARS, CUE_TAIL_CHARS, " | "))
    )
    embedding = None
    if embedder is not None and norm:
        embedding = _embedding(embedder, _window(text, SKETCH_HEAD_CHARS, SKETCH_TAIL_CHARS, "\n"))
    return TextFeatures(
        digest=_digest(norm, salt),
        chars=len(text),
        sketch=_sketch(words, salt),
        cues=_cues(norm, cue_words),
        embedding=embedding,
    )

"""Optional semantic embedder (``pip install 'frictionlens[semantic]'``): WordLlama.

Rephrases share meaning more than characters: on BANKING77 same- vs different-intent pairs
the embedding ranks rephrases markedly better than the character sketch (bench/rephrase.py
prints both). WordLlama (MIT) is a static token-embedding table run with numpy; it brings
the ``tokenizers``, ``safetensors`` and ``pydantic`` wheels, and its 16 MB of weights ship
inside the package, so it loads offline: nothing is ever downloaded.

The text embedding is WordLlama's own, the mean of the token vectors. WordLlama tokenises
a whole text as one piece (its tokeniser has no pre-splitting), which costs about a
microsecond per character; the tokeniser never merges across a space, so this module
tokenises word by word and caches each word's tokens: the same tokens for text with single
spaces, at a fraction of the cost once the words of the traffic are cached.
"""

from __future__ import annotations

import logging
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

#: distinct words whose tokens are cached (then the cache starts over): bounds memory
WORD_CACHE_SIZE = 20_000


def _load_wordllama() -> Any:
    """WordLlama's bundled model, loaded from the package's own folder, offline."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
        from wordllama import WordLlama
    finally:
        # wordllama calls logging.basicConfig(INFO) on import: leave the app's logging alone
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    return WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


class _TokenCache(dict[str, tuple[int, ...]]):
    """word -> its token ids; a miss tokenises the word. Starts over when full."""

    def __init__(self, tokenizer: Any) -> None:
        super().__init__()
        self._tokenizer = tokenizer

    def __missing__(self, word: str) -> tuple[int, ...]:
        ids = tuple(self._tokenizer.encode(word, add_special_tokens=False).ids)
        if len(self) >= WORD_CACHE_SIZE:
            self.clear()
        self[word] = ids
        return ids


class WordLlamaEmbedder:
    """``Embedder`` backed by WordLlama (256-d): 32 MB of float32 weights in memory (they
    ship as float16, but summing float16 rows costs numpy five times as much)."""

    def __init__(self) -> None:
        model = _load_wordllama()
        self._table: np.ndarray = model.embedding
        model.tokenizer.no_padding()
        self._tokens = _TokenCache(model.tokenizer)

    def embed(self, text: str) -> np.ndarray:
        """Mean token vector of ``text`` (zeros when it has no words)."""
        ids = list(chain.from_iterable(map(self._tokens.__getitem__, text.split())))
        if not ids:
            return np.zeros(self._table.shape[1], dtype=np.float32)
        return self._table.take(ids, axis=0).sum(axis=0) / len(ids)

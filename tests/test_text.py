"""Text features: normalisation, salted sketches, similarity, cue phrases, embeddings.

Quality figures asserted here are the ones bench/rephrase.py prints (same samples, same
seeds); the thresholds' documentation in frictionlens/features/text.py quotes them.
"""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frictionlens.features import text as tf
from frictionlens.features.record import TextFeatures

ROOT = Path(__file__).resolve().parents[1]
SALT = b"test-salt"


def _bench():
    """bench/rephrase.py: the pair sampler and metrics behind the documented figures."""
    spec = importlib.util.spec_from_file_location("bench_rephrase", ROOT / "bench" / "rephrase.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- normalisation -----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text() | st.text("ab \t\n\r\x0b\x0c\x1c\x85\u2028\u3000\xa0 "))
def test_normalise_matches_the_word_split_definition(text):
    assert tf.normalise(text) == " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def test_normalise_collapses_every_unicode_whitespace():
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    assert len(spaces) > 20
    for ch in spaces:
        assert tf.normalise(f" A{ch}{ch} b{ch}") == "a b", repr(ch)


def test_digest_ignores_case_width_and_spacing_but_not_salt():
    a = tf.digest("How do I  rotate\nlogs?", SALT)
    assert (
        a == tf.digest("how do i rotate logs?", SALT) == tf.digest("ＨＯＷ do I rotate logs?", SALT)
    )
    assert a != tf.digest("how do i rotate logs?", b"another salt")
    assert a != tf.digest("how do i rotate log?", SALT)


# --- sketch and similarity -------------------------------------------------------------


def feats(text: str, salt: bytes = SALT) -> TextFeatures:
    return tf.text_features(text, salt)


def test_identical_texts_are_fully_similar():
    a = feats("How do I reset the PIN of my card?")
    b = feats("how do i reset the pin of my card?")
    assert tf.similarity(a, b) == 1.0
    assert tf.sketch_similarity(a.sketch, b.sketch) == 1.0


def test_unrelated_texts_score_low_and_restatements_high():
    q = feats("How do I reset the PIN of my card?")
    assert (
        tf.similarity(q, feats("Quel temps fera-t-il demain à Lyon, et faut-il un parapluie ?"))
        < 0.05
    )
    assert tf.similarity(q, feats("How can I reset my card PIN")) > 3 * tf.REPHRASE_THRESHOLD
    near = "It writes to /var/log/app/app.log itself; how do I rotate that file every day?"
    assert (
        tf.sketch_similarity(feats(near).sketch, feats(near.replace("every", "each")).sketch)
        >= tf.DUPLICATE_THRESHOLD
    )


def test_sketch_shape_and_packing():
    s = feats("Can you explain the difference between a list and a tuple in Python?").sketch
    assert len(s) == tf.SKETCH_BINS and all(type(v) is int and 0 <= v <= 255 for v in s)
    other = feats("What is the difference between lists and tuples?").sketch
    assert tf.sketch_similarity(bytes(s), bytes(other)) == tf.sketch_similarity(s, other)
    assert tf.sketch_similarity(s, other[:-1]) == 0.0


def test_sketch_depends_on_the_salt():
    text = "Please summarise the attached incident report in three bullet points."
    one, two = feats(text, b"deployment one").sketch, feats(text, b"deployment two").sketch
    assert one != two
    # across salts the same text matches no better than chance
    assert tf.sketch_similarity(one, two) < 0.2


def _exact_jaccard(a: str, b: str) -> float:
    def grams(t: str) -> set[bytes]:
        data = b" " + tf._words(tf.normalise(t)) + b" "
        return {data[i : i + 4] for i in range(len(data) - 3)}

    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def test_sketch_estimates_shingle_jaccard():
    rng = random.Random(3)
    vocab = [
        f"{w}{i}"
        for i, w in enumerate(["alpha", "bravo", "carta", "delta", "eco", "fox", "golf"] * 30)
    ]
    errors = []
    for _ in range(200):
        shared = rng.sample(vocab, rng.randint(0, 30))
        a = " ".join(shared + rng.sample(vocab, rng.randint(1, 30)))
        b = " ".join(shared + rng.sample(vocab, rng.randint(1, 30)))
        errors.append(
            abs(tf.sketch_similarity(feats(a).sketch, feats(b).sketch) - _exact_jaccard(a, b))
        )
    assert np.mean(errors) < 0.05, np.mean(errors)


@pytest.mark.parametrize(
    "text", ["", "   \n\t ", "?!…", "a", "\ud800", "x\udfffy" * 50, "é" * 3, "🙂" * 10]
)
def test_odd_texts_never_raise(text):
    f = feats(text)
    assert f.chars == len(text)
    assert tf.similarity(f, f) in (0.0, 1.0)
    assert isinstance(tf.cues(text), frozenset)


def test_texts_without_words_are_similar_to_nothing():
    empty = feats("   ")
    assert empty.sketch == ()
    assert tf.similarity(empty, feats("")) == 0.0
    assert tf.similarity(empty, feats("hello")) == 0.0


def test_huge_texts_are_sketched_from_their_ends():
    rng = random.Random(5)
    words = [f"w{rng.randrange(10**6)}" for _ in range(200_000)]  # ~1.6 MB
    a = " ".join(words)
    b = " ".join(words[:1000] + ["changed"] + words[1001:])  # an edit in the middle
    fa, fb = feats(a), feats(b)
    assert len(fa.sketch) == tf.SKETCH_BINS
    assert fa.digest != fb.digest  # equality still reads everything
    assert fa.sketch == fb.sketch  # the sketch only reads the first and last characters


# --- cue phrases -----------------------------------------------------------------------

CUES = {
    "correction": [
        "No, I meant the savings account",
        "no i mean the other one",
        "That's not what I asked",
        "that’s not what I meant, I wanted the monthly numbers",
        "You misunderstood me.",
        "Nein, ich meinte die andere Datei",
        "Das ist nicht, was ich gefragt habe",
        "Non, je voulais dire le fichier de config",
        "Ce n'est pas ce que j'ai demandé",
        "No, quise decir la cuenta de ahorros",
        "Eso no es lo que pregunté",
    ],
    "give_up": [
        "Forget it.",
        "never mind, I'll figure it out myself",
        "ok, never mind",
        "I'll ask a human",
        "Let me talk to a human please",
        "Vergiss es!",
        "Schon gut.",
        "Ich gebe auf",
        "Laisse tomber.",
        "je vais demander à un humain",
        "Olvídalo.",
        "Da igual",
        "quiero hablar con un humano",
    ],
    "negative_feedback": [
        "That's wrong.",
        "this doesn't work",
        "It still doesn't work, same error again",
        "useless answer",
        "Das ist falsch",
        "das funktioniert nicht",
        "C'est faux",
        "ça ne marche toujours pas",
        "Eso está mal",
        "sigue sin funcionar",
    ],
    "refusal": [
        "I'm sorry, but I can't help with that.",
        "I cannot assist with this request.",
        "I’m unable to help with that.",
        "Es tut mir leid, aber ich kann dabei nicht helfen.",
        "Je suis désolé, mais je ne peux pas vous aider avec cela.",
        "Lo siento, pero no puedo ayudarte con eso.",
    ],
}

HARD_NEGATIVES = [
    "no problem",
    "No, thanks, that's all",
    "I never mind the rain",
    "can you fix that",
    "Can you fix that bug too?",
    "don't forget it",
    "Never mind the details, just give me the command",
    "How do I make this work with Python 3.12?",
    "I can't help but wonder why the build is slow",
    "Kein Problem",
    "Vergiss es nicht zu speichern",
    "Kannst du das beheben?",
    "Egal welche Farbe, Hauptsache schnell",
    "Pas de problème",
    "Laisse tomber la contrainte de taille et recommence",
    "Peux-tu corriger ça ?",
    "No hay problema",
    "No está mal, pero ¿puedes acortarlo?",
    "¿Puedes arreglar eso?",
    "No importa el precio",
    "what is wrong with my code?",
]


@pytest.mark.parametrize("kind,text", [(k, t) for k, texts in CUES.items() for t in texts])
def test_cue_phrases_fire(kind, text):
    assert kind in tf.cues(text)
    assert kind in feats(text).cues


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negatives_stay_silent(text):
    assert tf.cues(text) == frozenset()


def test_anchored_cues_only_at_the_start():
    assert "correction" in tf.cues("No, I meant the blue one")
    assert "correction" not in tf.cues("Honestly? No, I meant every word of it")
    assert "give_up" not in tf.cues("ok I will never mind the noise")


def test_cues_are_read_from_the_ends_of_long_messages():
    filler = "Here is the full log of the failing job, line after line. " * 40
    assert "give_up" in tf.cues(filler + "I'll ask a human.")
    assert "refusal" in tf.cues("I'm sorry, but I can't help with that. " + filler)
    assert tf.cues(filler + "I'll ask a human. " + filler) == frozenset()  # beyond the window


def test_every_language_has_every_kind():
    folder = ROOT / "frictionlens" / "features" / "data"
    for lang in ("en", "de", "fr", "es"):
        text = (folder / f"cues_{lang}.txt").read_text(encoding="utf-8")
        for kind in tf.CUE_KINDS:
            section = text.split(f"[{kind}]")[1].split("[")[0]
            phrases = [
                line for line in section.splitlines() if line.strip() and not line.startswith("#")
            ]
            assert len(phrases) >= 5, (lang, kind)


# --- embeddings --------------------------------------------------------------------------


class _Bag:
    """A deterministic stand-in embedder: hashed bag of words."""

    def embed(self, text: str) -> np.ndarray:
        vec = np.zeros(32, dtype=np.float32)
        for word in tf.normalise(text).split():
            vec[sum(word.encode()) % 32] += 1.0
        return vec


class _Broken:
    def embed(self, text: str) -> np.ndarray:
        raise RuntimeError("model unavailable")


def test_embeddings_are_unit_vectors_and_drive_similarity():
    a = tf.text_features("reset my card pin", SALT, _Bag())
    b = tf.text_features("pin my card reset", SALT, _Bag())  # same bag, different order
    assert a.embedding is not None and a.embedding.dtype == np.float32
    assert abs(float(np.linalg.norm(a.embedding)) - 1.0) < 1e-5
    assert tf.similarity(a, b) > 0.99 > tf.sketch_similarity(a.sketch, b.sketch)
    assert tf.similarity(a, feats("pin my card reset")) == tf.sketch_similarity(a.sketch, b.sketch)


def test_a_failing_embedder_costs_only_the_embedding():
    f = tf.text_features("No, I meant the other file", SALT, _Broken())
    assert f.embedding is None and f.cues == {"correction", "reaction"}
    assert len(f.sketch) == tf.SKETCH_BINS


# --- quality on real utterances (the figures documented in text.py) --------------------


@pytest.fixture(scope="module")
def banking(request):
    corpus = ROOT.parent / "shared" / "corpus" / "banking77" / "train.csv"
    if not corpus.is_file():
        pytest.skip("the shared corpus (../shared/corpus/banking77 beside the repo) is absent")
    bench = _bench()
    by_intent = bench.load_banking77(corpus)
    return bench, by_intent, bench.sample_pairs(by_intent, 3000, bench.EVAL_SEED)


def test_sketch_rephrase_quality_on_banking77(banking):
    bench, _, pairs = banking
    scored = bench.score_pairs(bench.feature_scorer(), pairs)
    negatives = bench.mixed_negatives(scored)
    assert bench.roc_auc(scored["same"], scored["random"]) >= 0.84
    assert bench.roc_auc(scored["same"], scored["hard"]) >= 0.73
    precision, recall, _ = bench.prf(scored["same"], negatives, tf.REPHRASE_THRESHOLD)
    assert precision >= 0.77 and recall >= 0.58


def test_duplicate_threshold_on_banking77(banking):
    bench, by_intent, _ = banking
    edits, same_intent = bench.duplicate_rates(
        bench.feature_scorer(), by_intent, 2000, bench.EVAL_SEED, tf.DUPLICATE_THRESHOLD
    )
    assert edits >= 0.95 and same_intent <= 0.01


def test_cues_rarely_fire_on_plain_questions(banking):
    _, by_intent, _ = banking
    queries = [t for texts in by_intent.values() for t in texts]
    fired = sum(1 for t in queries if tf.cues(t) - tf.ANSWER_CUES)
    assert fired / len(queries) <= 0.005


def test_wordllama_rephrase_quality_on_banking77(banking):
    pytest.importorskip("wordllama", reason="the semantic extra (wordllama) is not installed")
    from frictionlens.features.semantic import WordLlamaEmbedder

    bench, _, pairs = banking
    scored = bench.score_pairs(bench.feature_scorer(WordLlamaEmbedder()), pairs)
    assert bench.roc_auc(scored["same"], scored["random"]) >= 0.91
    assert bench.roc_auc(scored["same"], scored["hard"]) >= 0.79
    precision, recall, _ = bench.prf(
        scored["same"], bench.mixed_negatives(scored), tf.REPHRASE_THRESHOLD
    )
    assert precision >= 0.8 and recall >= 0.6


def test_wordllama_loads_offline_and_leaves_logging_alone():
    pytest.importorskip("wordllama", reason="the semantic extra (wordllama) is not installed")
    code = (
        "import logging, socket\n"
        "def no_network(*a, **k): raise OSError('network disabled')\n"
        "socket.socket.connect = no_network\n"
        "from frictionlens.features.semantic import WordLlamaEmbedder\n"
        "e = WordLlamaEmbedder()\n"
        "assert logging.getLogger().handlers == [] and logging.getLogger().level == logging.WARNING\n"
        "v = e.embed('reset my card pin')\n"
        "assert v.shape == (256,) and abs(float((v * v).sum())) > 0\n"
        "assert not e.embed('   ').any()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr

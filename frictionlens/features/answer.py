"""Did the answer engage with the request? A feature of one call, from its own two texts.

Half of every misalignment signal is the answer: "I mean, how do I get back a snapshot I
deleted?" after "Snapshots are point-in-time copies of your volumes." restates a question
that was not answered, and is friction at a similarity that would be an ordinary
follow-up after a real answer. An answer *failed* (``frictionlens.output.non_answer``) when

* it apologises, finds nothing or offers something else: the ``refusal`` and ``no_result``
  cues of data/cues_*.txt ("I'm sorry, there are no hotels in the south");
* it defines instead of answering: "X is / are …", X being a word of the request, to a
  request that does not ask for a fact (how-to, why, can-I, a problem described);
* it shares almost nothing with the request: under ``MIN_OVERLAP`` of the request's content
  words (stop words out, compared by their first ``STEM`` letters) occur in the answer.

The last two read chat turns only: a request over several lines or longer than
``REQUEST_HEAD_CHARS`` (a prompt template, a document) is left to the cues; so is the
overlap of a short or numeric answer ("Paris.", "42") or of a question back.

A request for a text of the user's own ("write a message to cancel…", "translate…") is never
judged: an apology in the draft is the user's. Computed at call time on the app's own texts,
with the other output features; only the boolean leaves. Cost: a split of the request's
first ``REQUEST_HEAD_CHARS`` characters and a substring test per content word in the
answer's first ``ANSWER_HEAD_CHARS``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

from frictionlens.features.text import ANSWER_CUES

#: answer cues that say the answer failed (``asks`` only says it ends on a question)
_FAILED_CUES = ANSWER_CUES - {"asks"}

#: share of the request's content words the answer must contain to have engaged with it.
#: On the tune part of tests/scenarios/friction_real.py: 0.15 / 0.25 / 0.34 / 0.5 catch
#: 93.6 / 95.0 / 98.1 / 98.1% of failed answers and misread 0.2 / 0.6 / 2.9 / 7.9% of engaged
#: ones, and flag 0.7 / 0.8 / 1.4 / 3.3% of ordinary follow-ups (restatement F1 0.687 /
#: 0.690 / 0.698 / 0.698): above 0.25 the follow-ups pay for little
MIN_OVERLAP = 0.25
#: content words are compared by this many leading letters ("deleted" ~ "delete")
STEM = 5
#: the request and the answer are read up to here (the opening says what an answer is about)
REQUEST_HEAD_CHARS = 400
ANSWER_HEAD_CHARS = 400
#: a request with fewer content words cannot be judged by overlap ("and in Paris?")
MIN_REQUEST_WORDS = 2
#: an answer with fewer words, or with a number, is specific: it is not judged by overlap
MIN_ANSWER_WORDS = 6

# punctuation becomes space, apostrophes vanish ("don't" == "dont"): one C pass, then a
# split, cost a fraction of a word regex
_MARKS = str.maketrans({**{c: " " for c in string.punctuation + "¿¡«»“”…–—"}, "'": None, "’": None})
# function words and the words of asking itself, in the languages the cues cover
_STOP = frozenset(
    """
    the and for are but not you your yours with have has had was were will would could should
    can cant cannot this that these those what which who whom whose when where why how there
    here from into onto about than then them they their our ours out off all any some one just
    very also too its it's been being does did doing done get got make made want need like know
    please thanks thank help tell give let may might must shall yes yet still again now only
    much many more most such own same other each both few over under after before between
    able way any way ever even use using used there's what's how's i'm i've i'd i'll don't
    doesn't didn't won't isn't aren't wasn't weren't haven't hasn't hadn't wouldn't couldn't
    shouldn't sure okay well
    der die das und oder aber nicht ich du sie wir ihr mein dein sein ihr unser euer ist sind
    war waren wird werden kann können muss müssen soll sollen will wollen habe hast hat haben
    ein eine einen einem einer mit von für auf aus bei nach wie was wer wann warum wo noch
    schon auch nur sehr bitte danke gibt mir mich dir dich uns
    les des une est sont pour avec dans sur par pas que qui quoi comment pourquoi quand où
    mon ton son mes tes ses nous vous ils elles leur cette ces être avoir fait faire peux peut
    veux voudrais merci aussi encore très
    los las una unos unas para con por que qué cómo como cuando cuándo dónde donde por qué
    porque mis tus sus nos ser estar tengo tiene puedo puede quiero gracias también muy
    """.translate(_MARKS).split()
)
# a request for a text of the user's own (a letter, a translation): whatever it says, an
# apology or a definition in it is not the assistant's
_ASKS_TEXT = re.compile(
    r"^\W*(?:please\s+)?(?:write|draft|compose|rewrite|rephrase|translate|summari[sz]e|"
    r"schreib|formuliere|übersetze|fasse|écris|rédige|traduis|résume|escribe|redacta|"
    r"traduce|resume)\b",
    re.IGNORECASE,
)
# a request for a fact, which "X is …" may well answer ("how much is the fee?" "The fee is
# …"); a definition answers none of the others (how-to, why, can-I, statements of a problem)
_ASKS_FACT = re.compile(
    r"^\W*(?:what|which|who|when|where|how (?:much|long|many|often|far|big)|is|are|does|do|"
    r"explain|describe|define|tell me about|erkläre?|beschreibe?|explique[rz]?|décris|"
    r"explica|describe|"
    r"did|was|were|will|has|have|was|wer|wann|wo|welche[rsnm]?|ist|sind|quel(?:le)?s?|quand|où|"
    r"qui|qu'est|qué|cuál|cuándo|dónde|quién)\b",
    re.IGNORECASE,
)
# "Snapshots are …", "A snapshot is …": group 1 is the word defined
_DEFINES = re.compile(
    r"^\W*(?:(?:a|an|the)\s+)?([^\W\d_]+)(?:\s+[\w-]+){0,2}\s+(?:is|are|refers? to|means)\s",
    re.IGNORECASE,
)


def content_words(text: str, limit: int) -> set[str]:
    """Stems of the words that carry what ``text`` is about."""
    words = text[:limit].casefold().translate(_MARKS).split()
    return {w[:STEM] for w in words if (len(w) >= 3 or w.isdigit()) and w not in _STOP}


def non_answer(request: str, answer: str, answer_cues: Iterable[str] = ()) -> bool:
    """Whether ``answer`` failed ``request`` (see the module docstring); False when unsure."""
    if not answer.strip() or _ASKS_TEXT.match(request):
        return False
    if _FAILED_CUES.intersection(answer_cues):
        return True
    request = request.strip()
    if not request or "\n" in request or len(request) > REQUEST_HEAD_CHARS:
        # the two rules below read a chat turn; a request over several lines or a long one
        # is a prompt template or a document (agent steps, RAG): answers rightly share few words
        return False
    asked = content_words(request, REQUEST_HEAD_CHARS)
    defined = _DEFINES.match(answer)
    if (
        defined is not None
        and defined.group(1).casefold()[:STEM] in asked
        and not _ASKS_FACT.match(request)
    ):
        return True
    if len(asked) < MIN_REQUEST_WORDS or _specific(answer):
        return False
    # a stem found anywhere in the answer's head counts: a substring test per stem is far
    # cheaper than splitting the answer into words, and its errors say "engaged" (the quiet side)
    head = answer[:ANSWER_HEAD_CHARS].casefold()
    return sum(stem in head for stem in asked) < MIN_OVERLAP * len(asked)


def _specific(answer: str) -> bool:
    """A short or numeric answer ("Paris.", "42", "May 14"), or a question back ("For how many
    people?"): it engages, whatever words it shares."""
    head = answer[:ANSWER_HEAD_CHARS]
    return (
        len(head.split()) < MIN_ANSWER_WORDS
        or any(c.isdigit() for c in head)
        or answer.rstrip().endswith("?")
    )

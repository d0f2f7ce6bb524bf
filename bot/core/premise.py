"""False premises: a question that takes for granted something the knowledge base says has not happened.

Moderators write the corrections (a passage's ``corrects`` sentences, true as of its date, on the
current head of a storyline). A question that presupposes an event ("when did Russia quit the
ISS?") is checked against the corrections of the storylines it retrieved; a close match means the
premise does not hold, and the answer opens with the correction, dated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.core.models import Passage, Premise
from bot.core.names import named_terms
from bot.core.prototypes import Correction, Prototypes
from bot.core.retrieval import Candidate
from bot.core.stemming import stem
from bot.core.storylines import Storylines
from bot.core.understand import Query

NEARBY = 5
UNFULFILLED = frozenset({"plan", "proposal"})
# Which corrections contradict which presupposition: "when did Russia quit?" (an event) is answered by
# "Russia has not left"; "is Rogozin still in charge?" by "Rogozin no longer heads Roscosmos".
CONTRADICTS = {"event": frozenset({"not"}), "still": frozenset({"change"}), "state": frozenset({"not", "change"})}
_ARTICLES = ("The ", "A ", "An ", "No ", "None ")


@dataclass(frozen=True)
class PremiseFinding:
    premise: Premise
    passage: Passage  # the passage whose correction applies: the current position to lead with
    similarity: float

    def from_lead(self, candidates: Sequence[Candidate]) -> bool:
        """The correction is on the best passage itself, which then cannot support what it denies."""
        return bool(candidates) and candidates[0].passage.id == self.passage.id


def best_correction(
    query: Query, vector: np.ndarray | None, candidates: Sequence[Candidate], storylines: Storylines,
    prototypes: Prototypes, *, name_weight: float = 0.0, contrast: float = 0.0,
) -> PremiseFinding | None:
    """The current correction on the retrieved storylines that best contradicts what the question
    takes for granted, whatever its score: the cosine between the question and the belief the
    correction denies, less ``name_weight`` times the share of the question's names (countries,
    organisations, people) the correction does not mention, less ``contrast`` times the cosine between
    the question and the correction's passage. The contrast keeps what the question claims apart from
    what it is about: "when did Luna-25 launch?" is as close to "Luna-25 landed on the Moon" as to the
    passage on Luna-25 itself, while "when did Russia quit the ISS?" is closer to "Russia left the ISS"
    than to the passage on Russia's deorbit plans. The question's own vector is compared, not
    a second one of what it takes for granted restated ("Russia quit the ISS"): on the tuning set that
    flagged as many false premises or more, without a second encoding."""
    if not query.presupposes or vector is None or not prototypes.corrections:
        return None
    rows = contradicting_rows(query, candidates, storylines, prototypes)
    if not rows:
        return None
    names = named_terms(query.asked)
    cosines = (prototypes.correction_vectors @ vector.ravel())[rows]
    if contrast and prototypes.correction_passage_vectors is not None:
        cosines = cosines - contrast * (prototypes.correction_passage_vectors[rows] @ vector.ravel())
    best: tuple[Correction, float] | None = None  # the first of the most similar
    for row, cosine in zip(rows, cosines.tolist(), strict=True):
        correction = prototypes.corrections[row]
        similarity = cosine - name_weight * (1.0 - _mentioned_share(names, correction))
        if best is None or similarity > best[1]:
            best = correction, similarity
    assert best is not None
    correction, similarity = best
    note = f"No: as of {correction.passage.date:%B %Y}, {_sentence_case(correction.sentence)}"
    return PremiseFinding(Premise(False, note, correction.passage.date), correction.passage, similarity)


def contradicting_rows(
    query: Query, candidates: Sequence[Candidate], storylines: Storylines, prototypes: Prototypes
) -> list[int]:
    """The rows of the corrections that could contradict what the question takes for granted: current
    ones (on a storyline's head) on the topics of the nearby passages, of the polarity its presupposition
    calls for, in the order of ``prototypes.corrections``."""
    assert query.presupposes is not None
    wanted = CONTRADICTS[query.presupposes]
    topics = {c.passage.topic for c in candidates[:NEARBY]}
    nearby = sorted(row for topic in topics for row in prototypes.correction_rows.get(topic, ()))
    corrections = prototypes.corrections
    return [row for row in nearby
            if storylines.is_head(corrections[row].passage) and _polarity(corrections[row].sentence) in wanted]


def _polarity(sentence: str) -> str:
    """"change" for "X is no longer Y" (a state that ended), "not" for "X has not happened"."""
    return "change" if "no longer" in sentence.casefold() else "not"


def _mentioned_share(names: frozenset[str], correction: Correction) -> float:
    if not names:
        return 1.0
    return sum(stem(name) in correction.words for name in names) / len(names)


def _sentence_case(sentence: str) -> str:
    """Lower-case a leading article so the sentence reads on after "as of March 2026, "."""
    sentence = sentence.strip()
    if sentence.startswith(_ARTICLES):
        sentence = sentence[0].lower() + sentence[1:]
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


def unfulfilled_plan(query: Query, candidates: Sequence[Candidate], storylines: Storylines) -> PremiseFinding | None:
    """A question taking an event for granted whose closest passages, to the newest, are still plans."""
    if not query.presupposes or not candidates:
        return None
    best = candidates[0].passage
    head = storylines.latest(best)
    if best.kind not in UNFULFILLED or head.kind not in UNFULFILLED:
        return None
    if head.corrects:
        state = _sentence_case(head.corrects[0])
    else:
        state = "that has not happened; it is still only " + ("planned." if head.kind == "plan" else "a proposal.")
    return PremiseFinding(Premise(False, f"No: as of {head.date:%B %Y}, {state}", head.date), head, 1.0)

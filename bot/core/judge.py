"""Stage 3, judgement: does the lead passage answer the question, how sure are we, and if not, why?

A small logistic model over retrieval features gives ``confidence``, the probability that the lead
passage answers the question; a second one tells a space-policy question the knowledge base lacks
(``not_covered``) from one outside its scope (``out_of_scope``). Both are fitted on the tuning
questions only (``spacebot fit``) and shipped as ``judge_model.json``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.core.membership import unsupported_membership
from bot.core.models import DeclineReason, Passage, Premise
from bot.core.names import named_terms
from bot.core.premise import best_correction, unfulfilled_plan
from bot.core.prototypes import Prototypes
from bot.core.retrieval import Candidate, LexicalIndex
from bot.core.stemming import stem
from bot.core.storylines import Storylines
from bot.core.text import split_sentences, tokenize
from bot.core.understand import Query

log = logging.getLogger(__name__)

MODEL_FILE = Path(__file__).with_name("judge_model.json")
FEATURES = (
    "dense_max", "dense_lead", "coverage_lead", "coverage_best", "unknown", "agreement", "lexical_lead",
    "scope_in", "scope_out", "scope_margin", "margin", "terms", "unknown_names", "names_lead",
    "knn_answerable", "knn_not_covered", "knn_out_of_scope",
)
# Tuning questions kept as neighbours: how close a question is to ones known to be answerable,
# space policy the knowledge base lacks, or out of scope.
EXAMPLE_GROUPS = ("answerable", "not_covered", "out_of_scope")
KNN = 3
TOP = 3
SUPPORTING_KINDS = frozenset({"event"})
DENIAL = re.compile(r"\b(?:not|never|no longer|non-\w+|yet to|declined|refused)\b", re.IGNORECASE)
FALLBACK_MIN_COSINE = 0.32  # the single-threshold rule this judge replaced
@dataclass(frozen=True)
class LinearModel:
    """A standardized logistic model: sigmoid(((x - mean) / scale) . coef + intercept)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float

    def probability(self, x: np.ndarray) -> float:
        z = float(((x - self.mean) / self.scale) @ self.coef + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def to_dict(self) -> dict[str, object]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LinearModel:
        arrays = {key: np.asarray(data[key], dtype=np.float64) for key in ("mean", "scale", "coef")}
        if not all(a.shape == (len(FEATURES),) for a in arrays.values()):
            raise ValueError(f"expected {len(FEATURES)} weights per model")
        return cls(arrays["mean"], arrays["scale"], arrays["coef"], float(data["intercept"]),  # type: ignore[arg-type]
                   float(data["threshold"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class JudgeModel:
    answerable: LinearModel
    in_domain: LinearModel
    premise_min_similarity: float
    fitted_on: str
    plan_rule: bool = True  # flag a taken-for-granted event whose storyline is still a plan
    premise_name_weight: float = 0.0  # how much a correction loses per share of the question's names it lacks
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tuning questions by EXAMPLE_GROUPS
    # A premise counts as supported (no correction) when the best passage is an event or background
    # passage that covers at least this share of the question's words.
    premise_support: float = 1.01
    membership_rule: bool = False  # flag "when did <country> join/leave X?" when no sentence says so
    premise_min_confidence: float = 0.0  # no premise correction for a question this unlikely to be answerable
    premise_contrast: float = 0.0  # how much a correction loses per unit of the question's cosine to its passage

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> JudgeModel:
        """The fitted model; the plain cosine rule (with a warning) when the file is missing or unusable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if tuple(data["features"]) != FEATURES:
                raise ValueError("it was fitted on other features")
            return cls(LinearModel.from_dict(data["answerable"]), LinearModel.from_dict(data["in_domain"]),
                       float(data["premise_min_similarity"]), str(data.get("fitted_on", "")),
                       bool(data.get("plan_rule", True)), float(data.get("premise_name_weight", 0.0)),
                       {g: tuple(map(str, data.get("examples", {}).get(g, ()))) for g in EXAMPLE_GROUPS},
                       float(data.get("premise_support", 1.01)), bool(data.get("membership_rule", False)),
                       float(data.get("premise_min_confidence", 0.0)), float(data.get("premise_contrast", 0.0)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("judge model %s unusable (%s): answering by cosine >= %.2f; run `spacebot fit`",
                        path, exc, FALLBACK_MIN_COSINE)
            return cls.cosine_rule(FALLBACK_MIN_COSINE)

    @classmethod
    def cosine_rule(cls, min_cosine: float, premise_min_similarity: float = 0.6) -> JudgeModel:
        """Answer when the best cosine reaches ``min_cosine``; in scope when nearer the covered subjects."""
        return cls(_one_feature("dense_max", min_cosine), _one_feature("scope_margin", 0.0),
                   premise_min_similarity, f"cosine rule >= {min_cosine}")

    def to_dict(self) -> dict[str, object]:
        return {"features": list(FEATURES), "answerable": self.answerable.to_dict(),
                "in_domain": self.in_domain.to_dict(), "premise_min_similarity": self.premise_min_similarity,
                "plan_rule": self.plan_rule, "premise_name_weight": self.premise_name_weight,
                "premise_support": self.premise_support, "membership_rule": self.membership_rule,
                "premise_min_confidence": self.premise_min_confidence, "premise_contrast": self.premise_contrast,
                "fitted_on": self.fitted_on,
                "examples": {g: list(self.examples.get(g, ())) for g in EXAMPLE_GROUPS}}


def _one_feature(name: str, cut: float, steepness: float = 50.0) -> LinearModel:
    """A model that says yes exactly when feature ``name`` reaches ``cut``."""
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index(name)] = steepness
    return LinearModel(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), coef, -steepness * cut, 0.5)


@dataclass(frozen=True)
class Verdict:
    answered: bool
    confidence: float
    decline_reason: DeclineReason | None = None
    premise: Premise | None = None
    premise_passage: Passage | None = None  # the current position the premise correction comes from


class Evidence:
    """What the judge knows about one snapshot: term statistics and prototype vectors."""

    def __init__(self, lexical: LexicalIndex, prototypes: Prototypes) -> None:
        self.lexical = lexical
        self.prototypes = prototypes
        stems = {term: stem(term) for term in lexical.vocabulary}  # once per word, not once per row it is in
        self.row_stems = [frozenset(map(stems.__getitem__, terms)) for terms in lexical.row_terms]
        self.known_stems = frozenset(stems.values())
        self.unknown_idf = lexical.idf("\0never-seen")

    def features(self, query: Query, vector: np.ndarray | None, candidates: Sequence[Candidate]) -> np.ndarray:
        """The feature vector, in the order of ``FEATURES``."""
        top = list(candidates[:TOP])
        terms = list(dict.fromkeys(query.content_terms))
        term_stems = [stem(t) for t in terms]
        unknown_terms = [not self._knows(t, s) for t, s in zip(terms, term_stems, strict=True)]
        # A word the knowledge base never uses weighs as a word no passage has.
        weights = [self.unknown_idf if out else self.lexical.idf(t)
                   for t, out in zip(terms, unknown_terms, strict=True)]
        weight_array = np.array(weights, dtype=np.float64)  # numpy's sums, not Python's: the fitted values
        total = float(weight_array.sum()) or 1.0
        coverages = [self._coverage(term_stems, weights, c.row) / total for c in top] or [0.0]
        unknown = float(weight_array[np.array(unknown_terms, dtype=bool)].sum()) / total
        scope_in, scope_out = self._scope(vector)
        lead = top[0] if top else None
        second = candidates[1].score if len(candidates) > 1 else 0.0
        return np.array([
            max((c.dense for c in top), default=0.0),
            lead.dense if lead else 0.0,
            coverages[0],
            max(coverages),
            unknown if terms else 1.0,
            float(bool(lead and (lead.dense_rank or 99) <= TOP and (lead.lexical_rank or 99) <= TOP)),
            1.0 / lead.lexical_rank if lead and lead.lexical_rank else 0.0,
            scope_in,
            scope_out,
            scope_in - scope_out,
            (lead.score - second) / lead.score if lead and lead.score > 0 else 0.0,
            min(len(terms), 10) / 10,
            self._unknown_names(terms, weights, unknown_terms, total),
            self._names_covered(query, lead),
            *self._neighbours(vector),
        ], dtype=np.float64)

    def _knows(self, term: str, term_stem: str) -> bool:
        """A word the knowledge base uses, or a compound of words it uses ("us-licensed"); a compound with
        a number ("shenzhou-25") is a name of its own."""
        if term_stem in self.known_stems:
            return True
        parts = term.split("-")
        return len(parts) > 1 and all(p.isalpha() and stem(p) in self.known_stems for p in parts)

    def _unknown_names(self, terms: list[str], weights: list[float], unknown_terms: list[bool], total: float) -> float:
        """The weighted share of the question's words that are neither in the knowledge base nor ordinary
        words of the language ("jwst", "bitcoin"): names of things it does not cover. Slang and chatter
        ("bailing", "these days") are ordinary words and do not count."""
        if not terms:
            return 1.0
        known = self.lexical.known_words
        return sum(w for t, w, out in zip(terms, weights, unknown_terms, strict=True) if out and t not in known) / total

    def _names_covered(self, query: Query, lead: Candidate | None) -> float:
        """The share of what the question names (countries, organisations, capitalized words) that the
        lead passage mentions: "Germany's space law" answered with Luxembourg's names half of it."""
        names = named_terms(query.asked)
        if not names:
            return 1.0
        if lead is None:
            return 0.0
        stems = self.row_stems[lead.row]
        return sum(stem(name) in stems for name in names) / len(names)

    def _neighbours(self, vector: np.ndarray | None) -> list[float]:
        """Mean cosine to the KNN nearest tuning questions of each group."""
        examples = self.prototypes.examples
        if vector is None:
            return [0.0] * len(EXAMPLE_GROUPS)
        return [nearest_mean(examples.get(group), vector) for group in EXAMPLE_GROUPS]

    def _coverage(self, term_stems: list[str], weights: list[float], row: int) -> float:
        stems = self.row_stems[row]
        return float(sum(w for s, w in zip(term_stems, weights, strict=True) if s in stems))

    def _scope(self, vector: np.ndarray | None) -> tuple[float, float]:
        if vector is None:
            return 0.0, 0.0
        v = vector.ravel()
        inside = float((self.prototypes.covered @ v).max()) if len(self.prototypes.covered) else 0.0
        outside = float((self.prototypes.not_covered @ v).max()) if len(self.prototypes.not_covered) else 0.0
        return inside, outside


def premise_supported(
    query: Query, candidates: Sequence[Candidate], features: np.ndarray, min_coverage: float
) -> bool:
    """The best passage states what the question takes for granted: an event or background passage
    that covers most of the question's words and names what it names in a sentence that denies
    nothing ("When was US Space Command re-established?")."""
    if not candidates or candidates[0].passage.kind not in SUPPORTING_KINDS:
        return False
    if features[FEATURES.index("coverage_lead")] < min_coverage:
        return False
    affirmed = {t for s in split_sentences(candidates[0].passage.text) if not DENIAL.search(s) for t in tokenize(s)}
    return all(t in affirmed for t in named_terms(query.asked))


def nearest_mean(vectors: np.ndarray | None, vector: np.ndarray) -> float:
    if vectors is None or not len(vectors):
        return 0.0
    nearest = np.sort(vectors @ vector.ravel())[-KNN:]
    return float(nearest.sum() / len(nearest))  # ndarray.mean's value (float32 sum, one rounding), without its overhead


def judge(
    query: Query, vector: np.ndarray | None, candidates: Sequence[Candidate],
    *, model: JudgeModel, evidence: Evidence, storylines: Storylines,
) -> Verdict:
    if query.declined_as_asked is not None:
        return Verdict(False, 0.0, query.declined_as_asked)
    if not candidates or vector is None:
        return Verdict(False, 0.0, "out_of_scope")
    x = evidence.features(query, vector, candidates)
    confidence = model.answerable.probability(x)
    if confidence >= model.premise_min_confidence:
        premise = find_premise(query, candidates, x, vector, model=model, evidence=evidence,
                               storylines=storylines)
        if premise is not None:
            return Verdict(True, confidence, None, *premise)
    if confidence >= model.answerable.threshold:
        return Verdict(True, confidence)
    in_domain = model.in_domain.probability(x) >= model.in_domain.threshold
    return Verdict(False, confidence, "not_covered" if in_domain else "out_of_scope")


def find_premise(
    query: Query, candidates: Sequence[Candidate], x: np.ndarray, vector: np.ndarray | None,
    *, model: JudgeModel, evidence: Evidence, storylines: Storylines,
) -> tuple[Premise, Passage] | None:
    """The correction of what the question wrongly takes for granted, and the position to lead with."""
    finding = best_correction(query, vector, candidates, storylines, evidence.prototypes,
                              name_weight=model.premise_name_weight, contrast=model.premise_contrast)
    if finding is not None and not finding.from_lead(candidates) and premise_supported(
            query, candidates, x, model.premise_support):
        finding = None
    if finding is None or finding.similarity < model.premise_min_similarity:
        finding = unfulfilled_plan(query, candidates, storylines) if model.plan_rule else None
    if finding is not None:
        return finding.premise, finding.passage
    return unsupported_membership(query, candidates, storylines) if model.membership_rule else None

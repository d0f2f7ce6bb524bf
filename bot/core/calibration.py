"""Fitting the judge on the tuning questions (``spacebot fit``): two logistic models and the thresholds.

Only ``questions/tuning`` is read here. Thresholds are chosen on cross-validated probabilities, so
they are not flattered by predicting the very questions a model was fitted on. scikit-learn is
needed only to fit; answering uses the saved weights with numpy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.core.engine import Engine
from bot.core.evaluation import Expectations
from bot.core.files import atomic_write_text
from bot.core.judge import EXAMPLE_GROUPS, FEATURES, KNN, MODEL_FILE, JudgeModel, LinearModel, premise_supported
from bot.core.membership import unsupported_membership
from bot.core.premise import best_correction, unfulfilled_plan
from bot.core.questions import Question
from bot.core.retrieval import Candidate, retrieve
from bot.core.understand import Query, understand

# A wrong answer (a cited passage about something else) costs this many false declines.
WRONG_ANSWER_COST = 3.0
NAME_WEIGHTS = (0.0, 0.1, 0.2, 0.3)
CONTRASTS = (0.0, 0.25, 0.5, 0.75)
# Highest first: among rules that do equally well on the tuning set, the most cautious one wins.
PREMISE_CONFIDENCES = (0.3, 0.2, 0.1, 0.05, 0.0)
SUPPORT_CUTS = (*(round(0.3 + 0.05 * i, 2) for i in range(15)), 1.01)
REGULARIZATION_C = 1.0
FOLDS = 5
# The threshold is chosen on the cost averaged over this many differently shuffled cross-validations:
# on one split alone, it moved from 0.48 to 0.73 with the shuffle's seed.
CV_REPEATS = 10
IN_SCOPE = ("answerable", "definition", "false_premise")


@dataclass
class Observations:
    features: np.ndarray
    answerable: np.ndarray  # 1: the question is answerable and retrieval found its passage; -1: left out
    in_domain: np.ndarray  # 1: space policy (answerable or not covered); 0: out of scope; -1: left out
    retrieved: list[tuple[Query, np.ndarray, list[Candidate]]]
    plan_flag: np.ndarray  # the unfulfilled-plan rule would flag the question
    lead_supports: np.ndarray  # the best passage is of a kind that can state that something happened
    membership_flag: np.ndarray  # the membership rule would flag the question
    false_premise: np.ndarray  # 1 for false-premise questions


def observe(engine: Engine, questions: Sequence[Question]) -> Observations:
    """Run the first stages on every standalone question and record features and labels."""
    snapshot = engine.snapshot
    expectations = Expectations(snapshot.knowledge)
    usable = [q for q in questions if not q.context and q.category not in ("not_a_question", "not_understood")]
    queries = [understand(q.text, snapshot.retriever.lexical) for q in usable]
    vectors = engine.encoder.encode([q.text or "?" for q in queries], batch_size=64)
    rows, answerable, in_domain, retrieved, plan_flag, supports, members = [], [], [], [], [], [], []
    for question, query, vector in zip(usable, queries, vectors, strict=True):
        candidates = retrieve(snapshot.retriever, query, vector, engine.settings.top_k)
        rows.append(snapshot.evidence.features(query, vector, candidates))
        found = expectations.widen(question.expect) & {c.passage.id for c in candidates[:3]}
        answerable.append(1 if question.category in IN_SCOPE and found else -1 if question.category in IN_SCOPE else 0)
        in_domain.append(0 if question.category == "out_of_scope" else 1)
        retrieved.append((query, vector, candidates))
        plan_flag.append(unfulfilled_plan(query, candidates, snapshot.storylines) is not None)
        supports.append(premise_supported(query, candidates, rows[-1], 0.0))
        members.append(unsupported_membership(query, candidates, snapshot.storylines) is not None)
    features = np.array(rows)
    _leave_one_out_neighbours(features, engine.encoder.encode([q.text for q in usable], batch_size=64), usable)
    return Observations(
        features, np.array(answerable), np.array(in_domain), retrieved, np.array(plan_flag), np.array(supports),
        np.array(members),
        np.array([q.category == "false_premise" for q in usable]),
    )


def example_group(question: Question) -> str | None:
    """Which neighbour group a tuning question joins (see ``EXAMPLE_GROUPS``)."""
    if question.category in IN_SCOPE:
        return "answerable"
    return question.category if question.category in ("not_covered", "out_of_scope") else None


def _leave_one_out_neighbours(features: np.ndarray, vectors: np.ndarray, questions: Sequence[Question]) -> None:
    """The neighbour features of each tuning question, computed without the question itself."""
    groups = [example_group(q) for q in questions]
    similarities = vectors @ vectors.T
    np.fill_diagonal(similarities, -np.inf)
    for column, group in zip(range(FEATURES.index("knn_answerable"), len(FEATURES)), EXAMPLE_GROUPS, strict=True):
        members = np.array([g == group for g in groups])
        if not members.any():
            features[:, column] = 0.0
            continue
        nearest = np.sort(similarities[:, members], axis=1)[:, -KNN:]
        features[:, column] = np.where(np.isfinite(nearest), nearest, np.nan).mean(axis=1)


def fit_linear(x: np.ndarray, y: np.ndarray, *, wrong_cost: float) -> LinearModel:
    """A balanced logistic model; its threshold minimizes the cost on cross-validated probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    classifier = LogisticRegression(C=REGULARIZATION_C, class_weight="balanced", max_iter=1000)
    runs = np.vstack([
        cross_val_predict(classifier, z, y, cv=StratifiedKFold(FOLDS, shuffle=True, random_state=seed),
                          method="predict_proba")[:, 1]
        for seed in range(CV_REPEATS)
    ])
    classifier.fit(z, y)
    return LinearModel(mean, scale, classifier.coef_[0].copy(), float(classifier.intercept_[0]),
                       best_threshold(runs, y, wrong_cost))


def best_threshold(probabilities: np.ndarray, y: np.ndarray, wrong_cost: float) -> float:
    """The cut that minimizes (positives refused) + wrong_cost x (negatives accepted), averaged over the
    rows of ``probabilities`` when it holds several cross-validation runs."""
    runs = np.atleast_2d(probabilities)
    candidates = np.unique(np.concatenate([[0.5], runs.ravel()]))
    refused = (runs[:, :, None] < candidates) & (y == 1)[None, :, None]
    accepted = (runs[:, :, None] >= candidates) & (y == 0)[None, :, None]
    costs = (refused.sum(axis=1) + wrong_cost * accepted.sum(axis=1)).mean(axis=0)
    return float(candidates[int(np.argmin(costs))])


def correction_scores(
    engine: Engine, seen: Observations, name_weight: float, contrast: float
) -> tuple[np.ndarray, np.ndarray]:
    """The best correction's score per question (nan where nothing could contradict it), and whether
    that correction is on the best passage (which then cannot support the premise it denies)."""
    snapshot = engine.snapshot
    scores, from_lead = [], []
    for query, vector, candidates in seen.retrieved:
        finding = best_correction(query, vector, candidates, snapshot.storylines, snapshot.evidence.prototypes,
                                  name_weight=name_weight, contrast=contrast)
        scores.append(finding.similarity if finding else np.nan)
        from_lead.append(finding is not None and finding.from_lead(candidates))
    return np.array(scores), np.array(from_lead)


def open_to_doubt(seen: Observations, from_lead: np.ndarray, support_cut: float) -> np.ndarray:
    """Where a correction may apply: unless the best passage states what the question takes for granted."""
    coverage = seen.features[:, FEATURES.index("coverage_lead")]
    return ~(seen.lead_supports & ~from_lead & (coverage >= support_cut))


@dataclass(frozen=True)
class PremiseRule:
    name_weight: float
    contrast: float
    threshold: float
    support: float
    floor: float


def fit_premise(engine: Engine, seen: Observations, confidence: np.ndarray) -> PremiseRule:
    """The rule that flags false premises best on the tuning set, a wrongly flagged true premise (or an
    uncovered question answered with a correction) costing WRONG_ANSWER_COST missed ones.

    Weight, contrast, cut and floor are chosen on cross-validated cost (the threshold picked on four folds,
    the cost counted on the fifth, over CV_REPEATS shuffles): picked on the whole set at once, they fitted
    its noise. The threshold is then the best one for the chosen rule on the whole set."""
    from sklearn.model_selection import StratifiedKFold

    labels = seen.false_premise
    splits = [split for seed in range(CV_REPEATS)
              for split in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(labels, labels)]
    best, best_cost = PremiseRule(0.0, 0.0, 1.0, 1.01, 0.0), float("inf")
    for weight, contrast in itertools.product(NAME_WEIGHTS, CONTRASTS):
        raw, from_lead = correction_scores(engine, seen, weight, contrast)
        scores = np.nan_to_num(raw, nan=-1.0)
        for floor, cut in itertools.product(PREMISE_CONFIDENCES, SUPPORT_CUTS):
            eligible = np.where(open_to_doubt(seen, from_lead, cut) & (confidence >= floor), scores, -1.0)
            cost = sum(premise_cost(eligible[test], labels[test], best_cut(eligible[train], labels[train]))
                       for train, test in splits) / CV_REPEATS
            if cost < best_cost:
                best, best_cost = PremiseRule(weight, contrast, best_cut(eligible, labels), cut, floor), cost
    return best


def premise_cost(eligible: np.ndarray, false_premise: np.ndarray, threshold: float) -> float:
    """Missed false premises plus WRONG_ANSWER_COST per true premise flagged, at ``threshold``
    (``eligible`` is -1 where no correction may apply)."""
    flagged = (eligible > -1.0) & (eligible >= threshold)
    return float(np.sum(false_premise & ~flagged) + WRONG_ANSWER_COST * np.sum(flagged & ~false_premise))


def best_cut(eligible: np.ndarray, false_premise: np.ndarray) -> float:
    """The lowest correction score threshold of least ``premise_cost``; above every score if none pays."""
    scores = np.unique(eligible[eligible > -1.0])
    candidates = np.append(scores, scores.max() + 1.0 if len(scores) else 1.0)
    flagged = eligible[:, None] >= candidates[None, :]
    costs = (np.sum(false_premise[:, None] & ~flagged, axis=0)
             + WRONG_ANSWER_COST * np.sum(flagged & ~false_premise[:, None], axis=0))
    return float(candidates[int(np.argmin(costs))])


def rule_pays(rule_flags: np.ndarray, seen: Observations, already: np.ndarray) -> bool:
    """Keep a premise rule if, where the rules before it said nothing, it flags more false premises
    than WRONG_ANSWER_COST times the true ones it would wrongly flag."""
    flagged = rule_flags & ~already
    gained = int(np.sum(flagged & seen.false_premise))
    wrong = int(np.sum(flagged & ~seen.false_premise))
    return gained > WRONG_ANSWER_COST * wrong


def fit_judge(engine: Engine, questions: Sequence[Question], source: str) -> JudgeModel:
    seen = observe(engine, questions)
    keep = seen.answerable >= 0
    answerable = fit_linear(seen.features[keep], seen.answerable[keep], wrong_cost=WRONG_ANSWER_COST)
    domain = fit_linear(seen.features, seen.in_domain, wrong_cost=1.0)
    confidence = np.array([answerable.probability(x) for x in seen.features])
    rule = fit_premise(engine, seen, confidence)
    raw, from_lead = correction_scores(engine, seen, rule.name_weight, rule.contrast)
    corrected = (np.nan_to_num(raw, nan=-1.0) >= rule.threshold) & open_to_doubt(seen, from_lead, rule.support)
    confident = confidence >= rule.floor
    plan_rule = rule_pays(seen.plan_flag & confident, seen, corrected)
    membership_rule = rule_pays(seen.membership_flag & confident, seen, corrected | (seen.plan_flag & plan_rule))
    digest = hashlib.sha256(json.dumps(sorted(q.text for q in questions)).encode("utf-8")).hexdigest()[:12]
    fitted_on = f"{source} ({len(questions)} questions, sha256 {digest}, {dt.date.today().isoformat()})"
    examples = {group: tuple(q.text for q in questions if not q.context and example_group(q) == group)
                for group in EXAMPLE_GROUPS}
    return JudgeModel(answerable, domain, rule.threshold, fitted_on, plan_rule, rule.name_weight, examples,
                      rule.support, membership_rule, rule.floor, rule.contrast)


def save_judge(model: JudgeModel) -> None:
    atomic_write_text(MODEL_FILE, json.dumps(model.to_dict(), indent=1) + "\n")


def describe(model: JudgeModel) -> list[str]:
    lines = [f"fitted on {model.fitted_on}",
             f"premise: correction score >= {model.premise_min_similarity:.3f} (name weight "
             f"{model.premise_name_weight}, contrast {model.premise_contrast}) "
             f"unless the lead covers >= {model.premise_support}; "
             f"plan rule {model.plan_rule}; membership rule {model.membership_rule}; "
             f"only at confidence >= {model.premise_min_confidence}"]
    for name, linear in (("answerable", model.answerable), ("in-domain", model.in_domain)):
        weights = ", ".join(f"{f} {w:+.2f}" for f, w in zip(FEATURES, linear.coef, strict=True))
        lines.append(f"{name}: threshold {linear.threshold:.3f}; {weights}")
    return lines

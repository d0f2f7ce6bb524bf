"""Stage 3: the judge's model file, its fallback, threshold fitting, premise corrections and scope."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.calibration import best_cut, best_threshold, premise_cost
from bot.core.judge import FEATURES, KNN, MODEL_FILE, JudgeModel, LinearModel, nearest_mean, premise_supported
from bot.core.models import Passage, Premise, Source
from bot.core.premise import PremiseFinding, best_correction
from bot.core.prototypes import Correction, Prototypes
from bot.core.retrieval import Candidate
from bot.core.scope import Scope, parse_scope
from bot.core.stemming import stem
from bot.core.storylines import Storylines
from bot.core.understand import Query


def test_the_shipped_judge_model_loads_and_says_what_it_was_fitted_on() -> None:
    model = JudgeModel.load(MODEL_FILE)
    assert "questions/tuning" in model.fitted_on
    assert "holdout" not in model.fitted_on
    assert 0.0 < model.answerable.threshold < 1.0


def test_a_judge_model_survives_a_round_trip_through_json(tmp_path: Path) -> None:
    model = JudgeModel.load(MODEL_FILE)
    path = tmp_path / "judge.json"
    path.write_text(json.dumps(model.to_dict()), encoding="utf-8")
    again = JudgeModel.load(path)
    assert again.to_dict() == model.to_dict()


@pytest.mark.parametrize("content", ["", "{not json", '{"features": ["other"]}', '{"features": []}'])
def test_an_unusable_model_file_falls_back_to_the_cosine_rule_with_a_warning(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "judge.json"
    path.write_text(content, encoding="utf-8")
    model = JudgeModel.load(path)
    assert model.fitted_on.startswith("cosine rule")
    assert "spacebot fit" in caplog.text


def test_the_cosine_rule_answers_exactly_at_its_threshold() -> None:
    rule = JudgeModel.cosine_rule(0.3).answerable
    x = np.zeros(len(FEATURES))
    x[FEATURES.index("dense_max")] = 0.31
    assert rule.probability(x) >= rule.threshold
    x[FEATURES.index("dense_max")] = 0.29
    assert rule.probability(x) < rule.threshold


def test_a_linear_model_with_the_wrong_number_of_weights_is_refused() -> None:
    with pytest.raises(ValueError, match="weights"):
        LinearModel.from_dict({"mean": [0.0], "scale": [1.0], "coef": [1.0], "intercept": 0.0, "threshold": 0.5})


def test_best_threshold_weighs_a_wrong_answer_as_several_false_declines() -> None:
    probabilities = np.array([0.9, 0.8, 0.6, 0.55, 0.4, 0.2])
    labels = np.array([1, 1, 0, 1, 0, 0])
    assert best_threshold(probabilities, labels, wrong_cost=3.0) == pytest.approx(0.8)
    assert best_threshold(probabilities, labels, wrong_cost=0.1) <= 0.55


@pytest.mark.parametrize(("sentence", "claim"), [
    ("Russia has not left the ISS.", "Russia has left the ISS"),
    ("China and Russia have not signed the Artemis Accords.", "China and Russia have signed the Artemis Accords"),
    ("The ISS has not been deorbited.", "The ISS has been deorbited"),
    ("The EU Space Act is not yet law; as of March 2026 it was a proposal.", "The EU Space Act is law"),
    ("Rogozin no longer heads Roscosmos.", "Rogozin heads Roscosmos"),
    ("Butch and Suni are no longer on the ISS: they came home.", "Butch and Suni are on the ISS"),
])
def test_a_correction_states_the_belief_it_denies(sentence: str, claim: str) -> None:
    assert Correction(sentence, None).claim == claim  # type: ignore[arg-type]


def test_scope_file_gives_the_summary_and_both_lists() -> None:
    scope = parse_scope("# Title\n\nI answer X.\nNothing else.\n\n## Covered\n- a\n- b\n\n## Not covered\n- c\n")
    assert scope.summary == "I answer X. Nothing else."
    assert scope.covered == ("a", "b")
    assert scope.not_covered == ("c",)


def test_a_scope_file_without_sections_is_all_summary() -> None:
    assert parse_scope("Space policy only.").summary == "Space policy only."
    assert parse_scope("Space policy only.").covered == ()


def test_the_shipped_scope_lists_covered_and_not_covered_subjects() -> None:
    scope = parse_scope((Path(__file__).parents[1] / "knowledge" / "scope.md").read_text(encoding="utf-8"))
    assert scope.summary and len(scope.covered) >= 10 and len(scope.not_covered) >= 10


@pytest.mark.parametrize(("word", "expected"), [("signed", "sign"), ("stations", "station"), ("leaving", "leav"),
                                                ("iss", "iss"), ("uses", "uses"), ("launched", "launch")])
def test_stem_strips_common_suffixes_but_keeps_short_words(word: str, expected: str) -> None:
    assert stem(word) == expected


def _passage(passage_id: str, kind: str, text: str) -> Passage:
    source = Source("Example News", "A headline", "https://example.org/a")
    return Passage(passage_id, "Title", text, dt.date(2025, 1, 1), source, "topic", Path("topic.yaml"), kind=kind)


def _query(asked: str) -> Query:
    return Query(asked=asked, text=asked, time=None, past=True, kind="other", presupposes="event",
                 small_talk=False, task=False, content_terms=())


def _covering_all() -> np.ndarray:
    features = np.zeros(len(FEATURES))
    features[FEATURES.index("coverage_lead")] = 1.0
    return features


@pytest.mark.parametrize(("kind", "supports"), [("event", True), ("background", False), ("plan", False)])
def test_only_an_event_passage_can_confirm_that_what_a_question_takes_for_granted_happened(
    kind: str, supports: bool
) -> None:
    lead = _passage("p1", kind, "India flew its first Gaganyaan crew in 2025.")
    candidates = [Candidate(0, lead, 1.0, 0.9)]
    query = _query("What did the Gaganyaan crew do on the first flight?")
    assert premise_supported(query, candidates, _covering_all(), 0.5) is supports


def test_a_correction_on_the_best_passage_is_known_to_come_from_the_lead() -> None:
    lead, other = _passage("lead", "plan", "Text."), _passage("other", "plan", "Text.")
    candidates = [Candidate(0, lead, 1.0, 0.9), Candidate(1, other, 0.5, 0.5)]
    premise = Premise(False, "No.", dt.date(2025, 1, 1))
    assert PremiseFinding(premise, lead, 0.9).from_lead(candidates)
    assert not PremiseFinding(premise, other, 0.9).from_lead(candidates)


def test_the_threshold_minimizes_the_cost_averaged_over_cross_validation_runs() -> None:
    y = np.array([1, 0])
    steady, shaken = np.array([0.3, 0.2]), np.array([0.6, 0.7])
    assert best_threshold(shaken, y, wrong_cost=3.0) == 0.5  # one run alone: accept both
    assert best_threshold(np.vstack([steady, shaken]), y, wrong_cost=3.0) == 0.3  # mean cost 1.5 at 0.3


@given(st.lists(st.floats(-1.0, 1.0, width=32), min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_the_mean_cosine_to_the_nearest_examples_is_numpys_mean_to_the_bit(cosines: list[float], seed: int) -> None:
    """The judge was fitted on ndarray.mean's float32 value: the feature must not move by a bit."""
    vector = np.random.default_rng(seed).standard_normal(8).astype(np.float32)
    examples = np.outer(np.asarray(cosines, dtype=np.float32), vector) / np.float32(vector @ vector)
    expected = float(np.sort(examples @ vector)[-KNN:].mean())
    assert nearest_mean(examples.astype(np.float32), vector) == expected


def test_the_premise_cut_flags_false_premises_unless_a_wrongly_flagged_true_one_costs_more() -> None:
    eligible = np.array([0.9, 0.8, 0.7, 0.6, -1.0])
    false_premise = np.array([True, True, False, True, True])
    # at 0.8: one missed at 0.6 and one unflaggable (-1); at 0.6: those minus one, plus a wrong flag (3)
    assert best_cut(eligible, false_premise) == pytest.approx(0.8)
    assert premise_cost(eligible, false_premise, 0.8) == 2.0
    assert premise_cost(eligible, false_premise, 0.6) == 4.0


def test_the_premise_cut_flags_nothing_when_every_flag_would_be_wrong() -> None:
    eligible = np.array([0.9, 0.5, -1.0])
    false_premise = np.array([False, False, True])
    cut = best_cut(eligible, false_premise)
    assert cut > 0.9
    assert premise_cost(eligible, false_premise, cut) == 1.0


def _unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_the_contrast_prefers_the_correction_the_question_is_closer_to_than_to_its_passage() -> None:
    """Question q is equally close (0.8) to both claims; it is close to the first correction's own passage
    (it is that passage's subject) and far from the second's, so with a contrast the second wins."""
    about, aside = _passage("about", "event", "Luna-25 crashed."), _passage("aside", "plan", "Russia stays.")
    corrections = (Correction("Luna-25 did not land on the Moon.", about), Correction("Russia has not left.", aside))
    question = _unit(0.8, 0.6, 0.0)
    prototypes = Prototypes(
        scope=Scope("", (), ()), covered=np.zeros((0, 3), np.float32), not_covered=np.zeros((0, 3), np.float32),
        corrections=corrections, correction_vectors=np.vstack([_unit(1, 0, 0), _unit(1, 0, 0)]),
        correction_passage_vectors=np.vstack([_unit(0.8, 0.6, 0.0), _unit(0.0, 0.0, 1.0)]))
    candidates = [Candidate(0, about, 1.0, 1.0), Candidate(1, aside, 0.5, 0.0)]
    storylines = Storylines({"about": about, "aside": aside})
    query = _query("When did Luna-25 launch?")
    plain = best_correction(query, question, candidates, storylines, prototypes)
    contrasted = best_correction(query, question, candidates, storylines, prototypes, contrast=0.5)
    assert plain is not None and plain.passage.id == "about" and plain.similarity == pytest.approx(0.8)
    assert contrasted is not None and contrasted.passage.id == "aside"
    assert contrasted.similarity == pytest.approx(0.8)  # nothing taken off: the question is far from its passage

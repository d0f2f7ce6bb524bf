"""Follow-ups: which questions lean on the conversation, how they are resolved, which answer wins."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.core.followup import choose, is_fragment, leans_on_context, plan, points_back, resolve, without_opening
from bot.core.models import Answer, Passage, RankedPassage, Source


@pytest.mark.parametrize("text", [
    "and Brazil?", "who leads it now?", "how many is that in total?", "did Japan sign too?",
    "what about Roscosmos?", "why?", "when did China sign?", "how did ESA react",
])
def test_fragments_lean_on_the_conversation(text: str) -> None:
    assert leans_on_context(text)


@pytest.mark.parametrize("text", ["When is Russia leaving the ISS?", "Who won the 2018 World Cup in Russia?",
                                  "What are the Artemis Accords and who signed them first?"])
def test_full_questions_stand_on_their_own(text: str) -> None:
    assert not leans_on_context(text)


@pytest.mark.parametrize("text", ["what is the moon agreement and who signed it",
                                  "What are the Artemis Accords and why does China object to them?",
                                  "when is starliner flying again and will there be people on it",
                                  "what is C3DO"])
def test_a_pronoun_pointing_into_the_question_itself_needs_no_conversation(text: str) -> None:
    assert not leans_on_context(text)


def test_a_named_subject_replaces_the_earlier_subject_of_the_same_kind() -> None:
    assert resolve("and Roscosmos?", "Who runs NASA?") == "Who runs Roscosmos?"
    assert resolve("what about Brazil?", "When did Japan sign the Artemis Accords?") == (
        "When did Brazil sign the Artemis Accords?")


def test_anything_else_is_read_together_with_the_earlier_question() -> None:
    assert resolve("who leads it now?", "What is Roscosmos?") == "who leads it now? What is Roscosmos?"


def test_the_plan_draws_on_the_last_earlier_question_and_needs_one() -> None:
    follow = plan("and Brazil?", ["Who runs NASA?", "When did Japan sign the Artemis Accords?"])
    assert follow.used == "When did Japan sign the Artemis Accords?"
    assert follow.resolved == "When did Brazil sign the Artemis Accords?"
    alone = plan("and Brazil?", [])
    assert alone.resolved is None and alone.used is None and alone.dependent


def test_a_chain_of_fragments_is_resolved_from_its_start() -> None:
    follow = plan("why did Saudi Arabia leave it", [
        "How many countries are parties to the Outer Space Treaty?", "and the Moon Agreement?"])
    assert follow.used == "and the Moon Agreement?"
    assert follow.earlier_in_full == "and the Moon Agreement? How many countries are parties to the Outer Space Treaty?"
    assert follow.resolved is not None and follow.resolved.endswith(follow.earlier_in_full)


def test_a_full_question_in_the_chain_starts_it_afresh() -> None:
    follow = plan("and Brazil?", ["Who runs NASA?", "When did Japan sign the Artemis Accords?"])
    assert follow.earlier_in_full == "When did Japan sign the Artemis Accords?"


def _answer(answered: bool, reason: str | None = None, lead: str = "p", topic: str = "t") -> Answer:
    passage = Passage(id=lead, title=lead, text="t.", date=dt.date(2024, 1, 1), topic=topic, file=Path("t.yaml"),
                      source=Source("P", "T", "https://example.org"))
    return Answer(question="q", answered=answered, lead="t." if answered else "",
                  passages=(RankedPassage(passage, 1.0),) if answered else (), history=(), suggestions=(),
                  kb_version="v", decline_reason=reason)  # type: ignore[arg-type]


def test_a_question_standing_on_its_own_keeps_its_own_answer() -> None:
    follow = plan("When is Russia leaving the ISS?", ["Who runs NASA?"])
    chosen = choose(follow, _answer(True, lead="alone"), _answer(True, lead="resolved"))
    assert chosen.passages[0].passage.id == "alone" and chosen.context_used is None


def test_an_out_of_scope_question_is_not_bent_by_the_context() -> None:
    follow = plan("Who won the 2018 World Cup?", ["When is Russia leaving the ISS?"])
    chosen = choose(follow, _answer(False, "out_of_scope"), _answer(True, lead="resolved"))
    assert chosen.decline_reason == "out_of_scope"


def test_an_uncovered_question_naming_its_own_subject_stays_declined_whatever_the_context() -> None:
    """Asked after NASA's head, the Canadian agency's was answered with NASA's: a cited answer about
    something else."""
    follow = plan("who runs the Canadian Space Agency these days", ["Who leads NASA now?"])
    chosen = choose(follow, _answer(False, "not_covered"), _answer(True, lead="nasa-head"))
    assert chosen.decline_reason == "not_covered" and not chosen.passages and chosen.context_used is None


def test_a_nameless_question_declined_alone_reads_the_context() -> None:
    follow = plan("who is building the vehicle?", ["When will the US deorbit vehicle be ready?"])
    chosen = choose(follow, _answer(False, "not_covered"), _answer(True, lead="resolved"))
    assert chosen.passages[0].passage.id == "resolved" and chosen.context_used is not None


def test_a_fragment_takes_the_resolved_answer_and_says_what_it_followed() -> None:
    follow = plan("and Roscosmos?", ["Who runs NASA?"])
    chosen = choose(follow, _answer(False, "not_covered"), _answer(True, lead="resolved"))
    assert chosen.passages[0].passage.id == "resolved"
    assert chosen.context_used == "Who runs NASA?"
    assert chosen.question == "and Roscosmos?"


def test_thanks_after_a_question_stays_small_talk() -> None:
    follow = plan("thanks!", ["Who runs NASA?"])
    assert choose(follow, _answer(False, "not_a_question"), _answer(True)).decline_reason == "not_a_question"


def test_a_pointing_fragment_without_context_is_not_understood() -> None:
    follow = plan("who leads it now?", [])
    chosen = choose(follow, _answer(True, lead="random"), None)
    assert chosen.decline_reason == "not_understood" and not chosen.answered and chosen.passages == ()


def test_a_follow_up_landing_on_the_earlier_subject_alone_keeps_its_own_answer() -> None:
    follow = plan("how many countries are in it now", ["When did China and Russia agree on a Moon base?"])
    earlier = _answer(True, lead="mou", topic="ilrs")
    chosen = choose(follow, _answer(True, lead="count", topic="ilrs"), _answer(True, lead="rivalry", topic="other"),
                    earlier)
    assert chosen.passages[0].passage.id == "count"
    assert chosen.context_used == "When did China and Russia agree on a Moon base?"


def test_a_follow_up_landing_elsewhere_alone_takes_the_resolved_answer() -> None:
    follow = plan("how many countries are in it now", ["When did China and Russia agree on a Moon base?"])
    earlier = _answer(True, lead="mou", topic="ilrs")
    chosen = choose(follow, _answer(True, lead="treaty", topic="treaties"), _answer(True, lead="count", topic="ilrs"),
                    earlier)
    assert chosen.passages[0].passage.id == "count" and chosen.context_used is not None


# --- issue 12: opening words, pointers that point at nothing, and declines that stand ---

@pytest.mark.parametrize("text", [
    "and when did Luna-25 launch?", "ok so what is the outer space treaty", "also, when did china test an asat weapon?",
    "and which countries have joined the ilrs", "ok. who is jared isaacman", "but what is PAROS?",
    "hey who is dmitry bakanov", "what about mars sample return, is it cancelled?",
])
def test_opening_words_before_a_question_asked_in_full_change_nothing(text: str) -> None:
    assert not leans_on_context(text)
    assert not leans_on_context(without_opening(text)), "the same question without its opening words"


@pytest.mark.parametrize("text", ["and Brazil?", "what about starlab", "and the moon agreement?", "and space command?",
                                  "ok so and Brazil?", "what about axiom's first module"])
def test_opening_words_before_a_fragment_still_lean_on_the_conversation(text: str) -> None:
    assert leans_on_context(text) and is_fragment(text)


@pytest.mark.parametrize("text", ["is there liquid water on mars", "what's nasa's budget this year",
                                  "what time is it in tokyo", "will it rain in paris this weekend",
                                  "when did india do its anti satellite test", "who runs the agency these days"])
def test_words_that_point_at_nothing_said_before_are_not_pointers(text: str) -> None:
    assert not points_back(text)


@pytest.mark.parametrize("text", ["who leads it now?", "how many countries have joined since?",
                                  "what's their lander called", "did japan sign too?", "why did saudi arabia leave it"])
def test_pointers_still_point_back(text: str) -> None:
    assert points_back(text)


def test_small_talk_after_opening_words_stays_small_talk_whatever_the_context() -> None:
    follow = plan("also, thanks!", ["Who runs NASA?"])
    assert follow.small_talk and not follow.dependent
    alone = _answer(False, "out_of_scope")
    assert choose(follow, alone, _answer(True, lead="resolved")) is alone
    assert choose(plan("also, thanks!", []), alone, None) is alone


def test_an_out_of_scope_question_saying_enough_keeps_its_decline_with_or_without_context() -> None:
    """"what about the weather in houston tomorrow" was not_covered after a question and not_understood
    without one; it is out of scope either way."""
    text = "what about the weather in houston tomorrow"
    alone = _answer(False, "out_of_scope")
    assert choose(plan(text, ["Where is Space Command headquarters going?"]), alone,
                  _answer(False, "not_covered")).decline_reason == "out_of_scope"
    assert choose(plan(text, []), alone, None).decline_reason == "out_of_scope"
    assert choose(plan("who made you", ["How much did NASA get?"]), alone,
                  _answer(True, lead="budget")).decline_reason == "out_of_scope"


def test_an_out_of_scope_reading_of_a_pointing_question_still_reads_the_context() -> None:
    follow = plan("why did it fail", ["What happened to Luna-25?"])
    chosen = choose(follow, _answer(False, "out_of_scope"), _answer(True, lead="luna-25-cause"))
    assert chosen.passages[0].passage.id == "luna-25-cause" and chosen.context_used is not None


def _answer_about(lead: str, topic: str, aliases: tuple[str, ...]) -> Answer:
    passage = Passage(id=lead, title=lead, text="t.", date=dt.date(2024, 1, 1), topic=topic, file=Path("t.yaml"),
                      source=Source("P", "T", "https://example.org"), aliases=aliases)
    return Answer(question="q", answered=True, lead="t.", passages=(RankedPassage(passage, 1.0),), history=(),
                  suggestions=(), kb_version="v")


def test_a_short_question_naming_what_its_own_answer_is_about_keeps_it() -> None:
    follow = plan("and when is starlab going up", ["How many countries have signed the Artemis Accords?"])
    assert follow.dependent  # one content word: short enough to be a follow-up
    alone = _answer_about("starlab-launch", "commercial-stations", ("Starlab", "Voyager"))
    chosen = choose(follow, alone, _answer(True, lead="accords-count", topic="accords"),
                    _answer(True, lead="accords-count", topic="accords"))
    assert chosen is alone


def test_a_short_question_naming_nothing_its_answer_is_about_reads_the_context() -> None:
    follow = plan("who was on board?", ["When did Artemis II launch?"])
    alone = _answer_about("iss-crew", "iss", ("ISS", "Expedition 1"))
    chosen = choose(follow, alone, _answer(True, lead="artemis-ii-crew", topic="artemis"),
                    _answer(True, lead="artemis-ii-launch", topic="artemis"))
    assert chosen.passages[0].passage.id == "artemis-ii-crew"


def test_a_long_nameless_question_declined_alone_keeps_its_decline() -> None:
    follow = plan("and how many people have ever walked on the moon in total", ["When will the ILRS be built?"])
    chosen = choose(follow, _answer(False, "not_covered"), _answer(True, lead="ilrs-schedule"))
    assert chosen.decline_reason == "not_covered" and chosen.context_used is None


def test_a_possessive_country_is_swapped_for_the_earlier_one() -> None:
    assert resolve("and china's?", "What happened in Russia's anti-satellite test?") == (
        "What happened in china's anti-satellite test?")

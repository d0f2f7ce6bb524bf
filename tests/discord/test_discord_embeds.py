"""Every embed the bot builds stays within Discord's limits, whatever the knowledge files hold."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import discord
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.models import (
    Answer,
    EngineStatus,
    Passage,
    Premise,
    RankedPassage,
    ReloadReport,
    Source,
    TopicSummary,
    ValidationIssue,
)
from bot.discord_bot.embeds import (
    DECLINE_TITLES,
    DECLINED_TITLE,
    TOPICS_HINT,
    answer_embed,
    fit_embed,
    history_lines,
    passage_embed,
    reload_embed,
    status_embed,
    topics_embed,
    truncate,
)

LIMITS = {"title": 256, "description": 4096, "fields": 25, "name": 256, "value": 1024, "footer": 2048}

texts = st.text(min_size=0, max_size=3000)
short = st.text(min_size=1, max_size=40)
dates = st.dates(min_value=dt.date(1957, 1, 1), max_value=dt.date(2026, 1, 1))
urls = st.builds(lambda path: f"https://example.org/{path}", st.text(max_size=2500))

passages = st.builds(
    Passage,
    id=st.text(min_size=1, max_size=300),
    title=texts,
    text=texts,
    date=dates,
    source=st.builds(Source, publisher=texts, title=texts, url=st.one_of(urls, texts)),
    topic=short,
    file=st.just(Path("topic.yaml")),
    tags=st.lists(short, max_size=40).map(tuple),
    supersedes=st.lists(short, max_size=40).map(tuple),
)
answers = st.builds(
    Answer,
    question=st.text(max_size=1000),
    answered=st.booleans(),
    lead=st.text(max_size=8000),
    passages=st.lists(st.builds(RankedPassage, passage=passages, score=st.floats(0, 1)), max_size=30).map(tuple),
    history=st.lists(passages, max_size=30).map(tuple),
    suggestions=st.lists(texts, max_size=5).map(tuple),
    kb_version=st.text(max_size=3000),
    decline_reason=st.none() | st.sampled_from(sorted(DECLINE_TITLES)),
    message=st.text(max_size=5000),
    confidence=st.floats(0, 1),
    premise=st.none() | st.builds(Premise, holds=st.just(False), note=st.text(max_size=3000), as_of=dates),
)
issues = st.builds(ValidationIssue, file=texts, passage=st.none() | texts, field=st.none() | short, message=texts)


def assert_within_limits(embed: discord.Embed) -> None:
    data = embed.to_dict()
    assert len(data.get("title", "")) <= LIMITS["title"]
    assert len(data.get("description", "")) <= LIMITS["description"]
    fields = data.get("fields", [])
    assert len(fields) <= LIMITS["fields"]
    for item in fields:
        assert 0 < len(item["name"]) <= LIMITS["name"]
        assert 0 < len(item["value"]) <= LIMITS["value"]
    assert len(data.get("footer", {}).get("text", "")) <= LIMITS["footer"]
    assert len(embed) <= 6000


@given(st.text(max_size=5000), st.integers(min_value=0, max_value=5000))
def test_truncate_never_exceeds_the_limit_and_keeps_short_text_intact(text: str, limit: int) -> None:
    cut = truncate(text, limit)
    assert len(cut) <= limit
    if len(text) <= limit:
        assert cut == text
    elif limit > 1:
        assert cut.endswith("…")


@settings(max_examples=60, deadline=None)
@given(answers, st.text(max_size=5000))
def test_answer_embed_is_within_discord_limits_for_any_answer(answer: Answer, scope: str) -> None:
    embed = answer_embed(answer, scope=scope)
    assert_within_limits(embed)
    if answer.answered and answer.passages and answer.history:
        assert embed.fields[-1].name == "Earlier positions"


@settings(max_examples=40, deadline=None)
@given(passages, st.none() | st.text(max_size=3000))
def test_passage_embed_is_within_discord_limits(passage: Passage, version: str | None) -> None:
    assert_within_limits(passage_embed(passage, kb_version=version))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.builds(TopicSummary, slug=texts, title=texts, count=st.integers(0, 10**6)), max_size=200))
def test_topics_embed_is_within_discord_limits(topics: list[TopicSummary]) -> None:
    assert_within_limits(topics_embed(topics, kb_version="v1"))


@settings(max_examples=40, deadline=None)
@given(
    st.booleans(),
    st.lists(texts, max_size=300).map(tuple),
    st.lists(issues, max_size=200).map(tuple),
    st.lists(issues, max_size=50).map(tuple),
    st.none() | texts,
)
def test_reload_embed_is_within_discord_limits(
    ok: bool,
    ids: tuple[str, ...],
    errors: tuple[ValidationIssue, ...],
    warnings: tuple[ValidationIssue, ...],
    actor: str | None,
) -> None:
    report = ReloadReport(
        ok=ok, kb_version="abc", added=ids, changed=ids, removed=ids, warnings=warnings, errors=errors, actor=actor
    )
    assert_within_limits(reload_embed(report))


def test_reload_failure_lists_errors_and_says_how_many_were_cut() -> None:
    errors = tuple(
        ValidationIssue(f"topic-{i}.yaml", f"p-{i}", "date", "not an ISO date " + "x" * 80) for i in range(200)
    )
    embed = reload_embed(ReloadReport(ok=False, kb_version="v1", errors=errors))

    assert "topic-0.yaml: passage p-0: field 'date': not an ISO date" in (embed.description or "")
    assert "… and " in (embed.description or "") and "more" in (embed.description or "")
    assert_within_limits(embed)


def test_declined_embed_has_scope_and_at_most_three_suggestions() -> None:
    answer = Answer("pizza?", False, "", (), (), ("one", "two", "three", "four"), "v1")
    embed = answer_embed(answer, scope="Space policy only.")

    assert embed.title == DECLINED_TITLE
    assert "Space policy only." in (embed.description or "")
    assert "three" in (embed.description or "") and "four" not in (embed.description or "")


def test_status_embed_is_within_limits_with_naive_and_aware_times() -> None:
    status = EngineStatus(
        kb_version="v" * 3000,
        passage_count=3,
        topic_count=1,
        model_name="m" * 3000,
        encoder="torch",
        index_kind="flat",
        index_size_bytes=2048,
        started_at=dt.datetime(2026, 1, 1),
        last_reload_at=dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC),
        last_reload_by="x" * 3000,
        median_latency_ms=None,
    )
    assert_within_limits(status_embed(status, now=dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC)))


def test_fit_embed_drops_fields_past_25_and_trims_the_total_to_6000() -> None:
    embed = discord.Embed(title="t" * 1000, description="d" * 5000)
    for i in range(40):
        embed.add_field(name=f"n{i}" * 200, value="v" * 2000)
    embed.set_footer(text="f" * 3000)

    fit_embed(embed)

    assert_within_limits(embed)
    assert embed.fields and embed.fields[0].name.startswith("n0")


def _huge_passage(i: int) -> Passage:
    return Passage(
        id=f"p-{i}",
        title="T" * 3000,
        text="X" * 3000,
        date=dt.date(2020, 1, 1),
        source=Source(publisher="P" * 3000, title="S" * 3000, url="https://example.org/" + "u" * 3000),
        topic="t",
        file=Path("t.yaml"),
    )


def test_answer_embed_with_everything_oversized_keeps_lead_first_source_and_history() -> None:
    answer = Answer(
        question="Q" * 1000,
        answered=True,
        lead="L" * 10_000,
        passages=tuple(RankedPassage(_huge_passage(i), 0.9) for i in range(30)),
        history=tuple(_huge_passage(100 + i) for i in range(30)),
        suggestions=(),
        kb_version="v" * 3000,
    )

    embed = answer_embed(answer, scope="")

    assert_within_limits(embed)
    assert (embed.description or "").startswith("LLL")
    assert embed.fields[0].name.startswith("[1] PPP")
    assert embed.fields[-1].name == "Earlier positions"


def _dated_passage(year: int, month: int) -> Passage:
    return Passage(
        id=f"p-{year}-{month:02d}",
        title=f"Position announced in {year}-{month:02d}, with a headline long enough to need room",
        text="Text.",
        date=dt.date(year, month, 1),
        source=Source(publisher="P", title="S", url="https://example.org/"),
        topic="t",
        file=Path("t.yaml"),
    )


def test_long_history_keeps_the_newest_and_the_oldest_positions_and_elides_the_middle() -> None:
    history = [_dated_passage(year, month) for year in range(2026, 2016, -1) for month in (12, 6)]
    value = history_lines(history)
    assert len(value) <= 1024
    assert value.splitlines()[0].startswith("**2026-12-01**")
    assert value.splitlines()[-1].startswith("**2017-06-01**")
    assert "more …" in value


def test_short_history_is_listed_in_full_without_an_elision_marker() -> None:
    history = [_dated_passage(2022, 7), _dated_passage(2021, 4)]
    assert history_lines(history).splitlines() == [
        f"**2022-07-01** {history[0].title}", f"**2021-04-01** {history[1].title}"]


# -- the trust fields: premise corrections, decline reasons, confidence ---------------------------
PREMISE_NOTE = "No: as of March 2026, Russia has not left the ISS."


def _passage(lead_id: str = "russia-iss-2026-03-latest") -> Passage:
    return Passage(
        id=lead_id,
        title="Roscosmos: the ISS will be deorbited from 2028",
        text="Roscosmos plans to keep flying to the ISS until the station is deorbited.",
        date=dt.date(2026, 3, 1),
        source=Source(publisher="TASS", title="Roscosmos on the ISS", url="https://example.org/iss"),
        topic="russia-iss",
        file=Path("russia-iss.yaml"),
    )


def _answered(lead: str = "Russia plans to stay on the ISS until it is deorbited.", **fields: object) -> Answer:
    values: dict[str, object] = {
        "question": "When did Russia quit the space station?",
        "answered": True,
        "lead": lead,
        "passages": (RankedPassage(_passage(), 0.8, 0.7),),
        "history": (),
        "suggestions": (),
        "kb_version": "v1",
    }
    values.update(fields)
    return Answer(**values)  # type: ignore[arg-type]


def _declined(reason: str | None, message: str = "", suggestions: tuple[str, ...] = ()) -> Answer:
    return Answer("q", False, "", (), (), suggestions, "v1", decline_reason=reason, message=message)  # type: ignore[arg-type]


def test_premise_note_comes_first_in_bold_above_the_lead() -> None:
    answer = _answered(premise=Premise(holds=False, note=PREMISE_NOTE, as_of=dt.date(2026, 3, 1)))

    description = answer_embed(answer, scope="").description or ""

    assert description.startswith(f"**{PREMISE_NOTE}**\n\n")
    assert description.index(PREMISE_NOTE) < description.index(answer.lead)
    assert description.endswith(" [1]")


def test_premise_note_is_kept_whole_when_the_lead_is_oversized() -> None:
    answer = _answered(lead="L" * 10_000, premise=Premise(False, PREMISE_NOTE, dt.date(2026, 3, 1)))

    embed = answer_embed(answer, scope="")

    assert_within_limits(embed)
    assert (embed.description or "").startswith(f"**{PREMISE_NOTE}**\n\nLLL")


def test_answer_without_a_premise_starts_with_the_lead() -> None:
    answer = _answered()
    assert (answer_embed(answer, scope="").description or "").startswith(answer.lead)


def test_confidence_is_shown_in_the_footer_only() -> None:
    embed = answer_embed(_answered(confidence=0.8734), scope="")

    assert "confidence 0.87" in (embed.footer.text or "")
    assert "0.87" not in (embed.description or "") + (embed.title or "")
    assert all("0.87" not in f.name + f.value for f in embed.fields)


def test_every_decline_reason_has_its_own_title() -> None:
    titles = {reason: answer_embed(_declined(reason, "m"), scope="").title for reason in DECLINE_TITLES}

    assert titles == DECLINE_TITLES
    assert len(set(titles.values())) == len(titles)
    assert DECLINED_TITLE not in titles.values()
    assert "not covered yet" in titles["not_covered"].lower()


def test_not_a_question_shows_the_help_text_three_example_questions_and_the_topics_hint() -> None:
    examples = ("When is Russia leaving the ISS?", "What is the ISS deorbit plan?", "Who signed the Accords?", "4th")
    embed = answer_embed(_declined("not_a_question", "Hi! I answer space-policy questions.", examples), scope="SCOPE")

    description = embed.description or ""
    assert embed.title == DECLINE_TITLES["not_a_question"]
    assert description.startswith("Hi! I answer space-policy questions.")
    assert [line for line in description.splitlines() if line.startswith("• ")] == [f"• {q}" for q in examples[:3]]
    assert "Try asking:" in description
    assert description.endswith(TOPICS_HINT)
    assert "SCOPE" not in description  # the engine's message says it; the scope is only a fallback


def test_out_of_scope_shows_the_engine_message_saying_what_the_bot_covers() -> None:
    message = "I can't answer that: it is not a space-policy question. I cover the ISS, Artemis and space law."
    embed = answer_embed(_declined("out_of_scope", message), scope="the scope summary")

    assert embed.title == DECLINE_TITLES["out_of_scope"]
    assert (embed.description or "").startswith(message)
    assert "the scope summary" not in (embed.description or "")
    assert TOPICS_HINT in (embed.description or "")


def test_out_of_scope_without_a_message_falls_back_to_the_scope() -> None:
    embed = answer_embed(_declined("out_of_scope"), scope="I cover space policy.")
    assert (embed.description or "").startswith("I cover space policy.")


def test_not_covered_lists_the_nearest_topics_under_their_own_heading() -> None:
    topics = ("ISS deorbit", "Russia and the ISS")
    embed = answer_embed(_declined("not_covered", "Not covered yet, I won't guess.", topics), scope="")

    description = embed.description or ""
    assert embed.title == DECLINE_TITLES["not_covered"]
    assert "**Nearest topics I cover:**\n• ISS deorbit\n• Russia and the ISS" in description
    assert "Did you mean" not in description


def test_not_understood_asks_for_the_whole_question_even_without_a_message() -> None:
    embed = answer_embed(_declined("not_understood"), scope="")

    assert embed.title == DECLINE_TITLES["not_understood"]
    assert "whole question" in (embed.description or "")


def test_topics_hint_is_not_repeated_when_the_message_already_names_topics() -> None:
    embed = answer_embed(_declined("not_covered", "Use /topics to see what I cover."), scope="")
    assert (embed.description or "").count("/topics") == 1


def test_a_decline_with_a_premise_still_shows_the_correction_first() -> None:
    answer = Answer(
        "q", False, "", (), (), (), "v1", decline_reason="not_covered", message="m",
        premise=Premise(False, PREMISE_NOTE, dt.date(2026, 3, 1)),
    )
    assert (answer_embed(answer, scope="").description or "").startswith(f"**{PREMISE_NOTE}**")

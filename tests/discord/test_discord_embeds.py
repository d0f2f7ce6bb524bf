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
    RankedPassage,
    ReloadReport,
    Source,
    TopicSummary,
    ValidationIssue,
)
from bot.discord_bot.embeds import (
    DECLINED_TITLE,
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

"""/source, its autocomplete, /topics, and an oversized passage rendered within Discord's limits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from discord_harness import ErrorLog, Harness, make_settings, running_bot
from fake_discord import FakeDiscord, FakeUser

from bot.core.embedding import Encoder
from bot.core.engine import Engine
from bot.core.judge import JudgeModel
from bot.core.models import Suggestion

HUGE = 5000


def assert_within_discord_limits(embed: dict[str, Any]) -> None:
    fields = embed.get("fields", [])
    assert len(embed.get("title", "")) <= 256
    assert len(embed.get("description", "")) <= 4096
    assert len(fields) <= 25
    assert all(0 < len(f["name"]) <= 256 and 0 < len(f["value"]) <= 1024 for f in fields)
    assert len(embed.get("footer", {}).get("text", "")) <= 2048
    footer = embed.get("footer", {}).get("text", "")
    total = len(embed.get("title", "")) + len(embed.get("description", "")) + len(footer)
    total += sum(len(f["name"]) + len(f["value"]) for f in fields)
    assert total <= 6000


async def test_source_shows_one_passage_in_full_with_its_citation(harness: Harness, member: FakeUser) -> None:
    engine = harness.bot.engine
    assert engine is not None
    passage = next(p for p in engine.knowledge.passages.values() if p.supersedes)

    embed = (await harness.slash(member, "source", {"passage": passage.id})).embed

    assert embed["title"] == passage.title
    assert embed["description"] == passage.text
    citation = embed["fields"][0]
    assert citation["name"] == f"{passage.source.publisher}: {passage.source.title} ({passage.date.isoformat()})"
    assert passage.source.url in citation["value"]
    assert passage.id in embed["footer"]["text"]
    assert any(f["name"] == "Supersedes" and passage.supersedes[0] in f["value"] for f in embed["fields"])


async def test_source_with_an_unknown_id_says_so_and_suggests_ids(harness: Harness, member: FakeUser) -> None:
    exchange = await harness.slash(member, "source", {"passage": "russia-iss-2099-nope"})

    content = exchange.followup["content"]
    assert content.startswith("No passage has the id `russia-iss-2099-nope`.")
    assert "Did you mean `russia-iss-" in content


async def test_source_autocomplete_matches_ids_and_titles(harness: Harness, member: FakeUser) -> None:
    engine = harness.bot.engine
    assert engine is not None
    by_id = await harness.autocomplete(member, "source", "passage", "russia-iss-2022")
    by_title = await harness.autocomplete(member, "source", "passage", "Borisov")

    assert by_id and all(c["value"].startswith("russia-iss-2022") for c in by_id[:3])
    assert all(c["value"] in engine.knowledge.passages for c in by_id + by_title)
    assert any("Borisov" in c["name"] for c in by_title)
    assert all(len(c["name"]) <= 100 for c in by_id + by_title)


async def test_topics_lists_every_topic_with_its_passage_count(harness: Harness, member: FakeUser) -> None:
    engine = harness.bot.engine
    assert engine is not None

    embed = (await harness.slash(member, "topics")).embed

    topics = engine.topics()
    assert embed["title"] == f"Topics ({len(topics)}, {sum(t.count for t in topics)} passages)"
    for topic in topics:
        assert f"**{topic.title}** (`{topic.slug}`): {topic.count} passages" in embed["description"]


OVERSIZED_TOPIC = """\
topic: oversized
title: A topic with an oversized passage
passages:
  - id: oversized-2024-01-zebra-orbital-tug
    title: "{title}"
    text: >-
      The zebra orbital tug programme was announced in January 2024. {text}
    date: 2024-01-10
    source:
      publisher: "{publisher}"
      title: "{source_title}"
      url: "https://example.org/{path}"
    aliases: [zebra orbital tug]
"""


async def test_oversized_passage_is_rendered_within_discord_embed_limits(
    fake_discord: FakeDiscord, kb_dir: Path, encoder: Encoder, member: FakeUser
) -> None:
    (kb_dir / "knowledge" / "oversized.yaml").write_text(
        OVERSIZED_TOPIC.format(
            title="Zebra orbital tug " + "very " * (HUGE // 5),
            text="It is a tug. " * 3,
            publisher="Publisher " * 300,
            source_title="A source title that goes on " * 200,
            path="a" * 3000,
        ),
        encoding="utf-8",
    )
    settings = make_settings(kb_dir)
    # This test is about rendering, not judging: a judge that answers whatever is asked, so the made-up
    # passage (its vector drowned in its own oversized title) is shown rather than declined.
    engine = await asyncio.to_thread(Engine.open, settings, encoder, JudgeModel.cosine_rule(-1.0))
    async with running_bot(fake_discord, settings, engine=engine) as harness:
        answer = await harness.slash(member, "ask", {"question": "What is the zebra orbital tug?"})
        source = await harness.slash(member, "source", {"passage": "oversized-2024-01-zebra-orbital-tug"})

    assert answer.embed["fields"][0]["name"].startswith("[1] Publisher")
    assert source.embed["title"].startswith("Zebra orbital tug")
    assert_within_discord_limits(answer.embed)
    assert_within_discord_limits(source.embed)


async def test_autocomplete_failure_offers_no_choices_and_logs_the_error(
    harness: Harness, member: FakeUser, monkeypatch: pytest.MonkeyPatch, error_log: ErrorLog
) -> None:
    engine = harness.bot.engine
    assert engine is not None

    def broken_suggest(text: str, limit: int = 25) -> list[Suggestion]:
        raise RuntimeError("fuzzy index gone")

    monkeypatch.setattr(engine, "suggest", broken_suggest)
    choices = await harness.autocomplete(member, "source", "passage", "russia")

    assert choices == []
    [record] = error_log.take("autocomplete suggestions failed")
    assert record.exc_info is not None and "fuzzy index gone" in str(record.exc_info[1])

"""The moderators' side: /kb feedback (browse, resolve), /kb stats and /kb gaps, /settings, /privacy."""

from __future__ import annotations

from typing import Any

from discord_harness import QUESTION, Harness
from fake_discord import APP_ID, GUILD_ID, FakeUser
from storage_harness import ask_for_answer, click, stored_votes, submit_modal, vote

from bot.discord_bot.cogs.server_settings import MANAGE_SERVER_ONLY
from bot.storage import StorageSettings

MANAGE_GUILD = 1 << 5
NOT_COVERED = "What are the FAA rules for launch licensing?"  # space policy, but not in the test knowledge


def browser_message(harness: Harness) -> dict[str, Any]:
    """The last message with the report browser's buttons."""
    browsers = [m for m in harness.fake.messages.values()
                if any(b.get("label") == "Resolve" for row in m["components"] for b in row.get("components", []))]
    return browsers[-1]


def button_id(message: dict[str, Any], label: str) -> str:
    return next(b["custom_id"] for row in message["components"] for b in row["components"] if b["label"] == label)


async def test_moderator_commands_are_hidden_from_members_without_manage_server(db_harness: Harness) -> None:
    [put] = db_harness.fake.sent("PUT", f"applications/{APP_ID}/guilds/{GUILD_ID}/commands")
    commands = {c["name"]: c for c in put.body}

    assert int(commands["kb"]["default_member_permissions"]) == MANAGE_GUILD
    assert {o["name"] for o in commands["kb"]["options"]} >= {"feedback", "gaps", "stats"}
    assert int(commands["settings"]["default_member_permissions"]) == MANAGE_GUILD
    assert commands["privacy"]["default_member_permissions"] is None


async def test_a_member_cannot_use_kb_feedback(db_harness: Harness, member: FakeUser) -> None:
    exchange = await db_harness.slash(member, "kb", subcommand="feedback", followups=0)

    assert exchange.callback_type == 4 and int(exchange.callback_data["flags"]) & 64
    assert "Only moderators" in exchange.callback_data["content"]


async def test_a_moderator_sees_an_open_report_and_resolves_it_with_a_note(
    db_harness: Harness, member: FakeUser, curator: FakeUser, storage_settings: StorageSettings
) -> None:
    answer = await ask_for_answer(db_harness, member)
    await vote(db_harness, member, answer, "outdated", "the date moved")

    listing = await db_harness.slash(curator, "kb", subcommand="feedback")
    assert int(listing.followup["flags"]) & 64
    assert "Outdated (open)" in listing.embed["title"] and listing.embed["description"] == QUESTION
    browser = browser_message(db_harness)
    await submit_modal(db_harness, curator, browser, button_id(browser, "Resolve"), ["fixed the lead"], followups=0)
    await db_harness.fake.wait_for(lambda r: r.method == "PATCH" and r.path.endswith("/messages/@original"))

    [report] = await stored_votes(storage_settings)
    engine = db_harness.bot.engine
    assert engine is not None
    assert (report.status, report.resolution_note, report.fixed_in) == (
        "resolved", "fixed the lead", engine.snapshot.version
    )


async def test_kb_stats_counts_the_answered_question_and_the_helpful_vote(
    db_harness: Harness, member: FakeUser, curator: FakeUser
) -> None:
    answer = await ask_for_answer(db_harness, member)
    await vote(db_harness, member, answer, "helpful")
    assert db_harness.bot.db is not None
    await db_harness.bot.db.queue.drain(5)

    exchange = await db_harness.slash(curator, "kb", subcommand="stats")

    fields = {field["name"]: field["value"] for field in exchange.embed["fields"]}
    assert (fields["Asked"], fields["Answered"], fields["Helpful rate"]) == ("1", "1", "100%")


async def test_kb_gaps_lists_a_question_the_bot_could_not_answer(
    db_harness: Harness, member: FakeUser, curator: FakeUser
) -> None:
    asked = await db_harness.slash(member, "ask", {"question": NOT_COVERED})
    assert asked.embed["title"] == "Not covered yet"
    assert db_harness.bot.db is not None
    await db_harness.bot.db.queue.drain(5)

    exchange = await db_harness.slash(curator, "kb", subcommand="gaps")

    assert [f["name"] for f in exchange.embed["fields"]] == [NOT_COVERED]


async def test_settings_turns_the_feedback_buttons_off_for_the_next_answers(
    db_harness: Harness, admin: FakeUser, member: FakeUser
) -> None:
    exchange = await db_harness.slash(admin, "settings", {"buttons": False})
    fields = {field["name"]: field["value"] for field in exchange.embed["fields"]}
    answer = await ask_for_answer(db_harness, member)

    assert fields["Feedback buttons"] == "off"
    assert answer["components"] == []


async def test_settings_refuses_a_member_without_manage_server(db_harness: Harness, member: FakeUser) -> None:
    exchange = await db_harness.slash(member, "settings", {"buttons": False}, followups=0)
    answer = await ask_for_answer(db_harness, member)

    assert exchange.callback_data["content"] == MANAGE_SERVER_ONLY
    assert answer["components"], "the buttons are still on"


async def test_privacy_deletes_the_users_own_reports(
    db_harness: Harness, member: FakeUser, storage_settings: StorageSettings
) -> None:
    answer = await ask_for_answer(db_harness, member)
    await vote(db_harness, member, answer, "wrong", "")

    exchange = await db_harness.slash(member, "privacy")
    assert "**1** feedback report" in exchange.followup["content"]
    notice = [m for m in db_harness.fake.messages.values() if "feedback report" in m["content"]][-1]
    reply = await click(db_harness, member, notice, button_id(notice, "Delete my reports"))

    assert reply == "Deleted 1 report(s)."
    assert await stored_votes(storage_settings) == []

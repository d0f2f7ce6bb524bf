"""Helpers for the e2e tests of the bot with a database: a running bot with storage, asking, clicking."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from discord_harness import QUESTION, Harness, running_bot
from fake_components import click_payload, modal_submit_payload
from fake_discord import FakeDiscord, FakeUser

from bot.core.engine import Engine
from bot.discord_bot.config import DiscordSettings
from bot.storage import VOTE_KINDS, FeedbackReport, Storage, StorageSettings, WriteQueue


@contextlib.asynccontextmanager
async def bot_with_storage(
    fake: FakeDiscord, settings: DiscordSettings, engine: Engine, storage_settings: StorageSettings
) -> AsyncIterator[Harness]:
    """A running bot with this database, opened (or failed to open) before the test goes on.

    One write attempt: a test with the database down sees its writes given up at once."""
    queue = WriteQueue(attempts=1, backoff=0.01)
    async with running_bot(fake, settings, engine=engine, storage_settings=storage_settings, write_queue=queue) as h:
        assert h.bot.db is not None
        await h.bot.db.wait_opened()
        yield h


async def ask_for_answer(harness: Harness, user: FakeUser) -> dict[str, Any]:
    """Ask the test question with /ask; return the answer message as the fake Discord stored it."""
    exchange = await harness.slash(user, "ask", {"question": QUESTION})
    assert exchange.embed["title"] == QUESTION
    answers = [m for m in harness.fake.messages.values() if m["embeds"] and m["embeds"][0]["title"] == QUESTION]
    return answers[-1]


async def click(harness: Harness, user: FakeUser, message: dict[str, Any], custom_id: str) -> str:
    """Click a button that answers with one private follow-up; return its text."""
    exchange = await harness.interact(click_payload(harness.fake, user, message, custom_id))
    return str(exchange.followup["content"])


async def submit_modal(
    harness: Harness, user: FakeUser, message: dict[str, Any], custom_id: str, values: list[str], *, followups: int = 1
) -> str:
    """Click a button that opens a modal, fill its text inputs with ``values`` and submit it."""
    opened = await harness.interact(click_payload(harness.fake, user, message, custom_id), followups=0)
    assert opened.callback_type == 9, "the button did not open a modal"
    payload = modal_submit_payload(harness.fake, user, opened.callback_data, values, message)
    submitted = await harness.interact(payload, followups=followups)
    return str(submitted.followup["content"]) if followups else ""


async def vote(harness: Harness, user: FakeUser, message: dict[str, Any], kind: str, note: str = "") -> str:
    """A feedback click; Wrong, Outdated and Bad source go through their note modal."""
    custom_id = f"spacebot:fb:{kind}"
    if kind == "helpful":
        return await click(harness, user, message, custom_id)
    return await submit_modal(harness, user, message, custom_id, [note])


async def stored_votes(storage_settings: StorageSettings) -> list[FeedbackReport]:
    async with Storage(storage_settings) as storage:
        return await storage.list_feedback(status=None, kinds=VOTE_KINDS)

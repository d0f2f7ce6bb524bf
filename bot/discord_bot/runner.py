"""Entry points for the CLI: ``spacebot run`` -> :func:`run_bot`, ``spacebot sync`` -> :func:`sync_commands`.

Both return a process exit code. A missing or rejected token is one line on stderr and exit code 2;
the token itself is never printed or logged. An engine that cannot be loaded (knowledge files that
do not validate with no saved index to serve, a model that cannot be loaded) is one line on stderr
and exit code 1, so a supervisor restarts the bot rather than keeping it connected and useless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any

import aiohttp
import discord
from pydantic import ValidationError

from bot.discord_bot.client import SpaceBotBase, create_bot
from bot.discord_bot.config import DiscordSettings

log = logging.getLogger(__name__)

EXIT_OK = 0
SHUTDOWN_GRACE = 10.0  # seconds the remaining tasks get to stop once the bot has closed
EXIT_FAILURE = 1
EXIT_BAD_TOKEN = 2

MISSING_TOKEN = "error: no Discord bot token: set DISCORD_TOKEN (see docs/discord-setup.md)"
REJECTED_TOKEN = "error: Discord rejected the bot token in DISCORD_TOKEN; reset it in the Developer Portal"
ENGINE_FAILED = "error: the answer engine failed to load: "
MESSAGE_CONTENT_REFUSED = (  # the only privileged intent the bot ever asks for
    "error: Discord refused the Message Content intent: turn it on in the Developer Portal "
    "(Bot, Privileged Gateway Intents) or set SPACEBOT_MESSAGE_CONTENT=false"
)
REASON_LIMIT = 400


class EngineLoadError(Exception):
    """The bot closed because its engine could not be loaded; the message is one line."""


def engine_failure_reason(exc: BaseException) -> str:
    """Why the engine did not load, in one line: the exception's message, and for knowledge errors
    the first problem and where to see them all."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    issues = getattr(exc, "issues", None)
    if issues:
        reason += f" (first: {' '.join(str(issues[0]).split())}); run `spacebot validate` to see them all"
    if len(reason) > REASON_LIMIT:
        reason = reason[: REASON_LIMIT - 1] + "…"
    return reason


def _token(settings: DiscordSettings) -> str | None:
    if settings.discord_token is None:
        return None
    token = settings.discord_token.get_secret_value().strip()
    return token or None


def _fail(message: str, code: int) -> int:
    print(message, file=sys.stderr)
    return code


def _configure_logging(settings: DiscordSettings) -> None:
    # Alembic announces each of its plugins at INFO when the storage layer first imports it.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)-8s %(name)s: %(message)s",
        )


def run_bot(settings: DiscordSettings, **bot_options: Any) -> int:
    """Run the bot until SIGTERM or Ctrl-C (exit 0) or until its engine fails to load (exit 1); then
    close the gateway, the HTTP session and the engine."""
    token = _token(settings)
    if token is None:
        return _fail(MISSING_TOKEN, EXIT_BAD_TOKEN)
    _configure_logging(settings)
    from bot.storage.config import StorageSettings  # after logging is set up: see _configure_logging

    try:
        bot_options.setdefault("storage_settings", StorageSettings())
    except ValidationError as exc:
        return _fail(f"error: invalid database settings: {exc.errors()[0]['msg']}", EXIT_FAILURE)
    try:
        _run_to_the_end(_run(settings, token, bot_options))
    except discord.LoginFailure:
        return _fail(REJECTED_TOKEN, EXIT_BAD_TOKEN)
    except discord.PrivilegedIntentsRequired:
        return _fail(MESSAGE_CONTENT_REFUSED, EXIT_FAILURE)
    except (discord.GatewayNotFound, aiohttp.ClientConnectionError) as exc:
        return _fail(f"error: cannot reach Discord: {exc}", EXIT_FAILURE)
    except EngineLoadError as exc:
        return _fail(f"{ENGINE_FAILED}{exc}", EXIT_FAILURE)
    except KeyboardInterrupt:
        log.info("interrupted")
    return EXIT_OK


def _run_to_the_end(main: Coroutine[Any, Any, None]) -> None:
    """Like ``asyncio.run``, but a task that ignores its cancellation at shutdown cannot keep the process
    alive: after SHUTDOWN_GRACE seconds it is named in a warning and left behind, so a supervisor that
    waits for the exit code gets it."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
    finally:
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=SHUTDOWN_GRACE))
            stuck = [task.get_name() for task in pending if not task.done()]
            if stuck:
                log.warning("left %d task(s) that did not stop within %.0f s: %s", len(stuck), SHUTDOWN_GRACE,
                            ", ".join(stuck))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def _run(
    settings: DiscordSettings, token: str, bot_options: dict[str, Any], stop: asyncio.Event | None = None
) -> None:
    """Run until ``stop`` is set (SIGINT/SIGTERM set it) or the connection ends for good.

    Raises :class:`EngineLoadError` if the bot closed because its engine could not be loaded.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread or on Windows: Ctrl-C then raises KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        bot = create_bot(settings, **bot_options)
        async with bot:
            await _run_until_stopped(bot, token, stop)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    if bot.engine_error is not None:
        raise EngineLoadError(engine_failure_reason(bot.engine_error))
    log.info("bot stopped")


async def _run_until_stopped(bot: SpaceBotBase, token: str, stop: asyncio.Event) -> None:
    runner = asyncio.create_task(bot.start(token), name="spacebot-run")
    stopper = asyncio.create_task(stop.wait(), name="spacebot-stop")
    failed = asyncio.create_task(_engine_failed(bot), name="spacebot-engine-failed")
    done, _ = await asyncio.wait({runner, stopper, failed}, return_when=asyncio.FIRST_COMPLETED)
    for waiter in (stopper, failed):
        if waiter not in done:
            waiter.cancel()
    if stopper in done:
        log.info("shutdown requested; closing")
        await bot.close()
    elif failed in done and not runner.done():
        # The bot closes itself too, but a close that lands between login and connect can leave the
        # connect loop retrying on a closed HTTP session: stop the start task, then close for sure.
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await bot.close()
        return
    await runner  # re-raises LoginFailure and friends


async def _engine_failed(bot: SpaceBotBase) -> None:
    """Returns once the engine has failed to load (never, if it loads)."""
    await bot.engine_ready.wait()
    if bot.engine_error is None:
        await asyncio.Event().wait()


def sync_commands(settings: DiscordSettings, guild_id: int | None) -> int:
    """Publish the slash commands: to one guild (instant) or globally (may take up to an hour)."""
    token = _token(settings)
    if token is None:
        return _fail(MISSING_TOKEN, EXIT_BAD_TOKEN)
    _configure_logging(settings)
    try:
        count = asyncio.run(_sync(settings, token, guild_id))
    except discord.LoginFailure:
        return _fail(REJECTED_TOKEN, EXIT_BAD_TOKEN)
    except aiohttp.ClientConnectionError as exc:
        return _fail(f"error: cannot reach Discord: {exc}", EXIT_FAILURE)
    except discord.HTTPException as exc:
        where = f"guild {guild_id}" if guild_id else "globally"
        return _fail(f"error: could not sync commands {where}: {exc.status} {exc.text}", EXIT_FAILURE)
    where = f"to guild {guild_id}" if guild_id else "globally (may take up to an hour to appear)"
    print(f"synced {count} commands {where}")
    return EXIT_OK


async def _sync(settings: DiscordSettings, token: str, guild_id: int | None) -> int:
    bot = create_bot(settings, engine_loader=None, sync_dev_guild=False)
    async with bot:
        await bot.login(token)  # runs setup_hook: the cogs register their commands
        if guild_id is not None:
            guild = discord.Object(id=guild_id)
            bot.tree.copy_global_to(guild=guild)
            synced = await bot.tree.sync(guild=guild)
        else:
            synced = await bot.tree.sync()
    return len(synced)

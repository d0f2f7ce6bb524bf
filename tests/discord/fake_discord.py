"""A small fake of Discord's REST API and gateway, served on 127.0.0.1 only.

The real, unmodified discord.py client talks to it. It implements just what the bot uses,
records every request, answers unknown routes with 404 (and records them so a test can fail),
and behaves like Discord where it matters to the bot:

* message ``content`` is blank unless the bot asked for the message_content intent, was
  mentioned, or the message is a DM;
* interaction callbacks answer with the ``interaction``/``resource`` JSON the client expects;
* the gateway does HELLO, heartbeat ACKs, IDENTIFY -> READY + GUILD_CREATE, and RESUME -> RESUMED.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

MESSAGE_CONTENT_INTENT = 1 << 15
MANAGE_GUILD = 1 << 5
BASIC_MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 16) | (1 << 31)

BOT_ID = 900000000000000001
APP_ID = 900000000000000002
GUILD_ID = 900000000000000010
CHANNEL_ID = 900000000000000020
DM_CHANNEL_ID = 900000000000000030
OWNER_ID = 900000000000000040
MOD_ROLE_ID = 900000000000000050

_snowflakes = itertools.count(1_000_000_000_000_000_000)


def snowflake() -> str:
    return str(next(_snowflakes))


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
        "flags": 0,
    }


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class FakeUser:
    id: int
    name: str
    roles: tuple[int, ...] = ()
    permissions: int = BASIC_MEMBER_PERMISSIONS
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        return user_payload(self.id, self.name, bot=self.bot)

    def member_payload(self) -> dict[str, Any]:
        return {
            "user": self.payload(),
            "roles": [str(r) for r in self.roles],
            "joined_at": "2025-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "avatar": None,
            "pending": False,
            "permissions": str(self.permissions),
        }


@dataclass
class GatewayState:
    identify_count: int = 0
    resume_count: int = 0
    intents: int | None = None
    session_id: str = "fake-session"
    sequence: int = 0
    ws: web.WebSocketResponse | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    shards: list[list[int]] = field(default_factory=list)


class FakeDiscord:
    """An aiohttp app standing in for discord.com's API (``/api/v10``) and the gateway."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.unknown_routes: list[str] = []
        self.gateway = GatewayState()
        self.bot_user = user_payload(BOT_ID, "SpaceBot", bot=True)
        self.messages: dict[str, dict[str, Any]] = {}
        self._request_event = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port: int = 0
        self.app = web.Application()
        self.app.router.add_route("*", "/api/v10/{tail:.*}", self._api)
        self.app.router.add_get("/gateway", self._gateway)
        self._routes: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", "users/@me", self._get_me),
            ("GET", "oauth2/applications/@me", self._get_application),
            ("PUT", f"applications/{APP_ID}/commands", self._put_commands),
            ("PUT", f"applications/{APP_ID}/guilds/*/commands", self._put_commands),
            ("POST", "interactions/*/*/callback", self._interaction_callback),
            ("POST", f"webhooks/{APP_ID}/*", self._create_message),
            ("PATCH", f"webhooks/{APP_ID}/*/messages/@original", self._create_message),
            ("DELETE", f"webhooks/{APP_ID}/*/messages/@original", self._no_content),
            ("POST", "channels/*/messages", self._create_message),
            ("POST", "channels/*/typing", self._no_content),
            ("POST", "users/@me/channels", self._create_dm),
            ("PUT", "channels/*/messages/*/reactions/*/@me", self._no_content),
        ]

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        ws = self.gateway.ws
        if ws is not None and not ws.closed:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- REST ------------------------------------------------------------------------------
    @staticmethod
    def _match(pattern: str, path: str) -> bool:
        parts, want = path.split("/"), pattern.split("/")
        return len(parts) == len(want) and all(w in ("*", p) for w, p in zip(want, parts, strict=True))

    async def _api(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"].rstrip("/")
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = _decode_body(raw, request.content_type)
        self.requests.append(Recorded(request.method, tail, body, dict(request.headers)))
        self._request_event.set()
        for method, pattern, handler in self._routes:
            if method == request.method and self._match(pattern, tail):
                return await handler(request, tail, body)
        self.unknown_routes.append(f"{request.method} /{tail}")
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    async def _get_me(self, request: web.Request, tail: str, body: Any) -> web.Response:
        if request.headers.get("Authorization") != "Bot fake-token":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(self.bot_user)

    async def _get_application(self, request: web.Request, tail: str, body: Any) -> web.Response:
        return _json(self._application_payload())

    def _application_payload(self) -> dict[str, Any]:
        return {
            "id": str(APP_ID),
            "name": "SpaceBot",
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": user_payload(OWNER_ID, "owner"),
            "verify_key": "0" * 64,
            "flags": 0,
            "team": None,
            "summary": "",
        }

    async def _put_commands(self, request: web.Request, tail: str, body: Any) -> web.Response:
        commands = []
        guild_id = tail.split("/")[3] if "/guilds/" in f"/{tail}" else None
        for command in body or []:
            entry = {
                "id": snowflake(),
                "application_id": str(APP_ID),
                "version": snowflake(),
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                "options": [],
                "description": "",
                "type": 1,
                **command,
            }
            if guild_id:
                entry["guild_id"] = guild_id
            commands.append(entry)
        return _json(commands)

    async def _interaction_callback(self, request: web.Request, tail: str, body: Any) -> web.Response:
        interaction_id = tail.split("/")[1]
        response_type = body["type"]
        data = body.get("data") or {}
        ephemeral = bool(int(data.get("flags", 0)) & 64)
        interaction: dict[str, Any] = {
            "id": interaction_id,
            "type": 2,
            "response_message_loading": response_type == 5,
            "response_message_ephemeral": ephemeral,
        }
        resource: dict[str, Any] = {"type": response_type}
        if response_type in (4, 5):
            message = self._message_from(data, CHANNEL_ID)
            interaction["response_message_id"] = message["id"]
            resource["message"] = message
        return _json({"interaction": interaction, "resource": resource})

    async def _create_message(self, request: web.Request, tail: str, body: Any) -> web.Response:
        parts = tail.split("/")
        channel_id = int(parts[1]) if parts[0] == "channels" else CHANNEL_ID
        return _json(self._message_from(body or {}, channel_id))

    async def _create_dm(self, request: web.Request, tail: str, body: Any) -> web.Response:
        recipient = str(body["recipient_id"])
        return _json(
            {
                "id": str(DM_CHANNEL_ID),
                "type": 1,
                "last_message_id": None,
                "recipients": [user_payload(int(recipient), f"user{recipient[-4:]}")],
            }
        )

    async def _no_content(self, request: web.Request, tail: str, body: Any) -> web.Response:
        return web.Response(status=204)

    def _message_from(self, data: dict[str, Any], channel_id: int) -> dict[str, Any]:
        message = {
            "id": snowflake(),
            "channel_id": str(channel_id),
            "author": self.bot_user,
            "content": data.get("content") or "",
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": data.get("embeds") or [],
            "pinned": False,
            "type": 0,
            "flags": int(data.get("flags", 0) or 0),
            "components": data.get("components") or [],
        }
        self.messages[message["id"]] = message
        return message

    # -- request inspection ----------------------------------------------------------------
    def sent(self, method: str | None = None, pattern: str | None = None) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (pattern is None or self._match(pattern, r.path))
        ]

    async def wait_for(
        self, predicate: Callable[[Recorded], bool], *, count: int = 1, seconds: float = 10.0
    ) -> list[Recorded]:
        """Wait until at least ``count`` recorded requests satisfy ``predicate``."""

        async def poll() -> list[Recorded]:
            while True:
                found = [r for r in self.requests if predicate(r)]
                if len(found) >= count:
                    return found
                self._request_event.clear()
                await self._request_event.wait()

        return await asyncio.wait_for(poll(), seconds)

    # -- gateway ---------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        try:
            await ws.prepare(request)
        except ConnectionResetError:  # the client left mid-handshake, as a bot closing while it connects does
            return web.Response()  # aiohttp drops it quietly as a premature disconnection
        self.gateway.ws = ws
        try:
            await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        except ConnectionResetError:
            return ws
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(msg.data)
            try:
                await self._on_gateway_op(ws, payload)
            except ConnectionResetError:  # the client closed while we answered (a bot shutting down at start)
                return ws
        return ws

    async def _on_gateway_op(self, ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        op = payload["op"]
        data = payload.get("d")
        if op == 1:
            await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
        elif op == 2:
            self.gateway.identify_count += 1
            self.gateway.intents = data["intents"]
            self.gateway.shards.append(list(data.get("shard") or [0, 1]))
            await self._send(ws, "READY", self._ready_payload(data))
            await self._send(ws, "GUILD_CREATE", self.guild_payload())
            self.gateway.connected.set()
        elif op == 6:
            self.gateway.resume_count += 1
            await self._send(ws, "RESUMED", {})
            self.gateway.connected.set()

    def _ready_payload(self, identify: dict[str, Any]) -> dict[str, Any]:
        return {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
            "session_id": self.gateway.session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": identify.get("shard") or [0, 1],
            "application": {"id": str(APP_ID), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self.gateway.sequence += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self.gateway.sequence, "d": data}))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        await asyncio.wait_for(self.gateway.connected.wait(), 10)
        ws = self.gateway.ws
        assert ws is not None and not ws.closed, "the bot is not connected to the fake gateway"
        await self._send(ws, event, data)

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the gateway connection the way Discord does on a server-side hiccup."""
        ws = self.gateway.ws
        assert ws is not None
        self.gateway.connected.clear()
        await ws.close(code=code, message=b"fake gateway hiccup")

    # -- payload builders ------------------------------------------------------------------
    def guild_payload(self) -> dict[str, Any]:
        return {
            "id": str(GUILD_ID),
            "name": "Space Policy Club",
            "icon": None,
            "owner_id": str(OWNER_ID),
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "features": [],
            "mfa_level": 0,
            "system_channel_flags": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "member_count": 3,
            "unavailable": False,
            "large": False,
            "joined_at": "2025-01-01T00:00:00+00:00",
            "roles": [
                {
                    "id": str(GUILD_ID),
                    "name": "@everyone",
                    "permissions": str(BASIC_MEMBER_PERMISSIONS),
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                },
                {
                    "id": str(MOD_ROLE_ID),
                    "name": "KB curators",
                    "permissions": str(BASIC_MEMBER_PERMISSIONS),
                    "position": 1,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": True,
                    "flags": 0,
                },
            ],
            "emojis": [],
            "stickers": [],
            "channels": [self.channel_payload()],
            "threads": [],
            "members": [
                {**FakeUser(BOT_ID, "SpaceBot", bot=True).member_payload()},
            ],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
        }

    @staticmethod
    def channel_payload() -> dict[str, Any]:
        return {
            "id": str(CHANNEL_ID),
            "type": 0,
            "guild_id": str(GUILD_ID),
            "name": "space-policy",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def _interaction_base(self, user: FakeUser, *, guild: bool = True) -> dict[str, Any]:
        base: dict[str, Any] = {
            "id": snowflake(),
            "application_id": str(APP_ID),
            "token": f"tok{snowflake()}",
            "version": 1,
            "attachment_size_limit": 8 * 1024 * 1024,
            "app_permissions": str((1 << 11) | (1 << 14) | (1 << 16) | (1 << 31)),
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)} if guild else {"1": str(user.id)},
            "context": 0 if guild else 1,
        }
        if guild:
            base["guild_id"] = str(GUILD_ID)
            base["guild_locale"] = "en-US"
            base["channel_id"] = str(CHANNEL_ID)
            base["channel"] = self.channel_payload()
            base["member"] = user.member_payload()
        else:
            base["channel_id"] = str(DM_CHANNEL_ID)
            base["channel"] = {"id": str(DM_CHANNEL_ID), "type": 1, "recipients": [user.payload()]}
            base["user"] = user.payload()
        return base

    def slash_payload(
        self,
        user: FakeUser,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        subcommand: str | None = None,
        autocomplete: bool = False,
    ) -> dict[str, Any]:
        opts = options or []
        if subcommand is not None:
            opts = [{"type": 1, "name": subcommand, "options": opts}]
        payload = self._interaction_base(user)
        payload["type"] = 4 if autocomplete else 2
        payload["data"] = {"id": snowflake(), "name": name, "type": 1, "options": opts}
        return payload

    def context_menu_payload(self, user: FakeUser, name: str, target: dict[str, Any]) -> dict[str, Any]:
        payload = self._interaction_base(user)
        payload["type"] = 2
        payload["data"] = {
            "id": snowflake(),
            "name": name,
            "type": 3,
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: target}},
        }
        return payload

    def user_message(
        self, author: FakeUser, content: str, *, dm: bool = False, mention_bot: bool = False
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE payload as this bot would receive it (content blanked as Discord does)."""
        visible = dm or mention_bot or bool((self.gateway.intents or 0) & MESSAGE_CONTENT_INTENT)
        message: dict[str, Any] = {
            "id": snowflake(),
            "channel_id": str(DM_CHANNEL_ID if dm else CHANNEL_ID),
            "author": author.payload(),
            "content": content if visible else "",
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in content and not dm,
            "mentions": [self.bot_user] if mention_bot else [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "components": [],
        }
        if not dm:
            message["guild_id"] = str(GUILD_ID)
            member = author.member_payload()
            member.pop("user")
            message["member"] = member
        return message


def _decode_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if content_type == "application/json":
        return json.loads(raw)
    if content_type.startswith("multipart/"):
        text = raw.decode("utf-8", "replace")
        start = text.find("{")
        end = text.rfind("}")
        if start != -1 and end != -1:
            try:
                return json.loads(text[start : end + 1])
            except json.JSONDecodeError:
                return text
        return text
    return raw.decode("utf-8", "replace")


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses JSON only when the content type is exactly "application/json" (no charset).
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})

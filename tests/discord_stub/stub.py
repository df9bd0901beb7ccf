"""DiscordStub: an aiohttp server on 127.0.0.1 speaking enough of Discord's REST v10 and gateway v10."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

import yarl
from aiohttp import web

from . import rest_core, rest_interactions, rest_messages
from .faults import FaultRule, Faults
from .gateway import Gateway, GatewaySession
from .messages import EPHEMERAL, ApiError, MessageStore
from .records import WAIT_SECONDS, InteractionRecord, RecordedRequest, wait_for
from .router import RestCall, RouteTable, json_response, read_body
from .snowflakes import SnowflakeFactory, shard_of
from .user_events import UserEvents
from .world import DEFAULT_EVERYONE_PERMISSIONS, World, user_payload

T = TypeVar("T")

ROUTES = RouteTable()
# Order matters: "@original" must win over the generic "{message_id}" template, which accepts it too.
for _table in (rest_core.ROUTES, rest_interactions.ROUTES, rest_messages.ROUTES):
    ROUTES.extend(_table)

GATEWAY_MESSAGE_CONTENT = 1 << 19  # the Message Content intent is enabled in the developer portal


class DiscordStub(UserEvents):
    """An aiohttp server on 127.0.0.1 speaking enough of Discord's REST v10 and gateway v10 for discord.py."""

    def __init__(
        self,
        *,
        bot_user_id: int = 1_100_000_000_000_000_001,
        application_id: int | None = None,
        bot_name: str = "newsdesk",
        token: str = "stub-bot-token",
        shard_count: int = 1,
        heartbeat_interval_ms: int = 1000,
        compress: bool = False,
        interaction_deadline: float = 3.0,
        owner_user_id: int = 1_100_000_000_000_000_002,
    ) -> None:
        self.world = World(user_payload(bot_user_id, bot_name, bot=True))
        self.application_id = application_id or bot_user_id
        self.application_flags = GATEWAY_MESSAGE_CONTENT
        self.token = token
        self.shard_count = shard_count
        self.owner_user_id = owner_user_id
        self.interaction_deadline = interaction_deadline
        self.snowflakes = SnowflakeFactory()
        self.store = MessageStore(self.world)
        self.gateway = Gateway(self, heartbeat_interval_ms=heartbeat_interval_ms, compress=compress)
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.interactions_by_token: dict[str, InteractionRecord] = {}
        self.typing: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/", self.gateway.handle)
        app.router.add_get("/resume", self.gateway.handle)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self.gateway.close()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordStub:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the stub is not started")
        return f"http://127.0.0.1:{self._port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/resume"

    @property
    def bot_user_id(self) -> int:
        return self.world.bot_id

    def install(self, monkeypatch: Any) -> None:
        """Point discord.py's REST base and default gateway at this stub (undone by monkeypatch)."""
        import discord.gateway
        import discord.http

        monkeypatch.setattr(discord.http.Route, "BASE", self.base_url)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(self.gateway_url + "/")
        )

    # world building

    def add_guild(
        self,
        guild_id: int,
        *,
        name: str = "Newsroom",
        owner_id: int | None = None,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        bot_roles: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        return self.world.add_guild(
            guild_id,
            name=name,
            owner_id=owner_id or self.owner_user_id,
            everyone_permissions=everyone_permissions,
            bot_roles=bot_roles,
        )

    def add_channel(
        self,
        guild_id: int,
        channel_id: int,
        *,
        name: str = "general",
        type: int = 0,
        parent_id: int | None = None,
    ) -> dict[str, Any]:
        return self.world.add_channel(guild_id, channel_id, name=name, type=type, parent_id=parent_id)

    def add_role(self, guild_id: int, role_id: int, *, name: str, permissions: int) -> dict[str, Any]:
        return self.world.add_role(guild_id, role_id, name=name, permissions=permissions)

    def add_member(
        self,
        guild_id: int,
        user_id: int,
        *,
        name: str | None = None,
        roles: tuple[int, ...] = (),
        nick: str | None = None,
        bot: bool = False,
    ) -> dict[str, Any]:
        return self.world.add_member(guild_id, user_id, name=name, roles=roles, nick=nick, bot=bot)

    def add_dm_channel(self, channel_id: int, user_id: int) -> dict[str, Any]:
        return self.world.add_dm_channel(channel_id, user_id)

    def set_overwrite(
        self, channel_id: int, target_id: int, *, allow: int = 0, deny: int = 0, role: bool = False
    ) -> dict[str, Any]:
        """Set a channel permission overwrite (before the bot connects, or it won't see it)."""
        return self.world.set_overwrite(channel_id, target_id, allow=allow, deny=deny, role=role)

    # guilds joined and left while the bot runs

    async def join_guild(self, guild_id: int) -> int:
        """The bot is invited to a guild already built with ``add_guild`` (GUILD_CREATE, as on a join)."""
        payload = self.world.guild_payload(guild_id, include_all_members=False)
        return await self.gateway.dispatch("GUILD_CREATE", payload, guild_id=guild_id)

    async def delete_channel(self, channel_id: int) -> int:
        """A guild channel is deleted (CHANNEL_DELETE)."""
        channel = self.world.channels.pop(int(channel_id))
        guild_id = int(channel["guild_id"])
        self.world.guild(guild_id).channel_ids.remove(int(channel_id))
        return await self.gateway.dispatch("CHANNEL_DELETE", channel, guild_id=guild_id)

    async def delete_role(self, guild_id: int, role_id: int) -> int:
        """A role is deleted (GUILD_ROLE_DELETE); members lose it."""
        state = self.world.guild(guild_id)
        state.roles.pop(int(role_id))
        for member in state.members.values():
            member["roles"] = [r for r in member["roles"] if int(r) != int(role_id)]
        data = {"guild_id": str(guild_id), "role_id": str(role_id)}
        return await self.gateway.dispatch("GUILD_ROLE_DELETE", data, guild_id=guild_id)

    async def move_guild(self, guild_id: int, shard_id: int) -> int:
        """From now on the guild's events go to ``shard_id``, which receives its GUILD_CREATE first (as when
        Discord rebalances guilds between shards, or a process takes over another's shards)."""
        self.gateway.moved[int(guild_id)] = shard_id
        return await self.join_guild(guild_id)

    async def remove_guild(self, guild_id: int, *, outage: bool = False) -> int:
        """GUILD_DELETE: the bot was removed from the guild (kicked, banned, or the guild deleted), or with
        ``outage`` the guild is unavailable for a while (Discord sends ``unavailable: true`` then)."""
        data: dict[str, Any] = {"id": str(guild_id)}
        if outage:
            data["unavailable"] = True
        sent = await self.gateway.dispatch("GUILD_DELETE", data, guild_id=guild_id)
        if not outage:
            state = self.world.guilds.pop(int(guild_id))
            for channel_id in state.channel_ids + state.thread_ids:
                self.world.channels.pop(channel_id, None)
        return sent

    # observing

    def messages(self, channel_id: int, *, include_ephemeral: bool = True) -> list[dict[str, Any]]:
        """Messages the bot created in the channel, as they stand now, oldest first."""
        found = [m for m in self.store.in_channel(channel_id) if m["author"]["id"] == str(self.bot_user_id)]
        if not include_ephemeral:
            found = [m for m in found if not m["flags"] & EPHEMERAL]
        return sorted(found, key=lambda m: int(m["id"]))

    def message(self, message_id: int) -> dict[str, Any] | None:
        return self.store.by_id.get(int(message_id))

    def allowed_mentions(self, message_id: int) -> dict[str, Any] | None:
        """The ``allowed_mentions`` the bot sent when creating the message (None if it sent none)."""
        return self.store.request_bodies.get(int(message_id), {}).get("allowed_mentions")

    def registered_commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        return list(self.commands.get(guild_id, []))

    @property
    def heartbeats(self) -> dict[int, list[float]]:
        return self.gateway.heartbeats

    @property
    def unknown_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if not r.known_route]

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and pattern.search(r.path)]

    async def wait_for(self, predicate: Callable[[], T], timeout: float = WAIT_SECONDS) -> T:
        return await wait_for(predicate, timeout=timeout)

    async def wait_until_connected(self, shard_id: int | None = None, timeout: float = WAIT_SECONDS) -> None:
        """Wait until a gateway session (for ``shard_id``, or any) has identified or resumed and is open."""
        await wait_for(
            lambda: self.gateway.connected(shard_id),
            timeout=timeout,
            what=f"gateway session for shard {shard_id} connected",
        )

    async def wait_for_guild_session(
        self, guild_id: int | None, timeout: float = WAIT_SECONDS
    ) -> list[GatewaySession]:
        def ready() -> list[GatewaySession]:
            return self.gateway.targets(guild_id)

        return await wait_for(ready, timeout=timeout, what=f"a gateway session owning guild {guild_id}")

    # faults

    def rate_limit(
        self, method: str, path_regex: str, *, times: int = 1, retry_after: float = 0.5, global_: bool = False
    ) -> FaultRule:
        """Answer the next ``times`` matching requests with 429 and Discord's rate-limit headers."""
        return self.faults.rate_limit(
            method, path_regex, times=times, retry_after=retry_after, global_=global_
        )

    def fail(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        code: int = 0,
        message: str = "stub failure",
        times: int = 1,
    ) -> FaultRule:
        """Answer the next ``times`` matching requests with ``status`` and a Discord JSON error."""
        return self.faults.fail(method, path_regex, status=status, code=code, message=message, times=times)

    async def drop_gateway(
        self,
        *,
        code: int = 4000,
        shard_id: int | None = None,
        resumable: bool = True,
        wait: bool = True,
        timeout: float = WAIT_SECONDS,
    ) -> None:
        """Close the gateway socket(s); with ``wait``, return once the client has resumed (or re-identified)."""
        resumes, identifies = len(self.gateway.resumes), len(self.gateway.identifies)
        dropped = await self.gateway.drop(code=code, shard_id=shard_id, resumable=resumable)
        if wait and dropped:
            expected = len(dropped)

            def reconnected() -> bool:
                done = len(self.gateway.resumes) - resumes + len(self.gateway.identifies) - identifies
                return done >= expected

            await wait_for(reconnected, timeout=timeout, what="client reconnected after gateway drop")

    def shard_of(self, guild_id: int) -> int:
        return shard_of(guild_id, self.shard_count)

    # REST entry point

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body, files = await read_body(request)
        authorization = request.headers.get("Authorization")
        authorized = authorization == f"Bot {self.token}"
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        record = RecordedRequest(request.method, path, dict(request.query), body, files, headers, authorized)
        self.requests.append(record)
        fault = self.faults.take(request.method, path)
        if fault is not None:
            record.status = fault[0]
            return json_response(*fault)
        found = ROUTES.find(request.method, path)
        if found is None:
            record.known_route = False
            record.status = 404
            return json_response(404, {"message": "404: Not Found", "code": 0})
        route, params = found
        if route.auth and not authorized:
            record.status = 401
            return json_response(401, {"message": "401: Unauthorized", "code": 0})
        call = RestCall(request.method, path, params, dict(request.query), body, files)
        try:
            status, payload = await route.handler(self, call)
        except ApiError as exc:
            status, payload = exc.status, {"message": exc.message, "code": exc.code}
        record.status = 204 if payload is None else status
        return json_response(status, payload)

    def new_interaction(
        self, kind: int, payload_factory: Callable[[int, str], dict[str, Any]], channel_id: int
    ) -> InteractionRecord:
        interaction_id = self.snowflakes.next()
        token = f"itoken-{interaction_id}-{secrets.token_urlsafe(16)}"
        payload = payload_factory(interaction_id, token)
        record = InteractionRecord(interaction_id, token, kind, payload, channel_id, _messages=self.message)
        self.interactions[interaction_id] = record
        self.interactions_by_token[token] = record
        return record

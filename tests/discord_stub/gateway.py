"""Gateway v10 over a websocket: HELLO, IDENTIFY/READY, heartbeats, RESUME with replay, member chunks."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .messages import visible_copy
from .snowflakes import shard_of

if TYPE_CHECKING:
    from .stub import DiscordStub

GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
DIRECT_MESSAGES = 1 << 12
DIRECT_MESSAGE_REACTIONS = 1 << 13
MESSAGE_CONTENT = 1 << 15
# Application flags: the Message Content intent enabled in the developer portal (or, limited, not yet verified).
PORTAL_MESSAGE_CONTENT = (1 << 19) | (1 << 18)

MESSAGE_EVENTS = {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"}
REACTION_EVENTS = {"MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE"}


class Connection:
    """One websocket from the client; frames are JSON text, or zlib-stream binary if asked for."""

    def __init__(self, ws: web.WebSocketResponse, *, zlib_stream: bool) -> None:
        self.ws = ws
        self._zlib = zlib.compressobj() if zlib_stream else None
        self.session: GatewaySession | None = None
        self.shard_id: int | None = None
        self.heartbeats: list[float] = []

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        if self._zlib is None:
            await self.ws.send_str(text)
        else:
            await self.ws.send_bytes(self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH))


@dataclass
class GatewaySession:
    session_id: str
    shard_id: int
    shard_count: int
    intents: int
    conn: Connection | None = None
    seq: int = 0
    resumable: bool = True
    history: list[dict[str, Any]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def covers(self, guild_id: int | None) -> bool:
        if guild_id is None:
            return self.shard_id == 0
        return shard_of(guild_id, self.shard_count) == self.shard_id

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        async with self.lock:
            self.seq += 1
            frame = {"op": 0, "t": event, "s": self.seq, "d": data}
            self.history.append(frame)
            conn = self.conn
            if conn is not None and not conn.ws.closed:
                try:
                    await conn.send(frame)
                except ConnectionError:
                    self.conn = None


class Gateway:
    """Accepts gateway connections and routes dispatches to the shard that owns each guild."""

    def __init__(self, stub: DiscordStub, *, heartbeat_interval_ms: int, compress: bool) -> None:
        self.stub = stub
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.compress = compress
        self.ack_heartbeats = True
        self.sessions: dict[str, GatewaySession] = {}
        self.by_shard: dict[int, GatewaySession] = {}
        self.connections: list[Connection] = []
        self.received: list[dict[str, Any]] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.invalidations: list[dict[str, Any]] = []
        self.moved: dict[int, int] = {}  # guild id -> the shard that now receives its events

    # observing

    @property
    def heartbeats(self) -> dict[int, list[float]]:
        result: dict[int, list[float]] = {}
        for conn in self.connections:
            if conn.shard_id is not None:
                result.setdefault(conn.shard_id, []).extend(conn.heartbeats)
        for times in result.values():
            times.sort()
        return result

    def connected(self, shard_id: int | None = None) -> list[GatewaySession]:
        return [
            s
            for s in self.by_shard.values()
            if s.conn is not None and not s.conn.ws.closed and (shard_id is None or s.shard_id == shard_id)
        ]

    # websocket handling

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        zlib_stream = self.compress and request.query.get("compress") == "zlib-stream"
        conn = Connection(ws, zlib_stream=zlib_stream)
        self.connections.append(conn)
        try:
            await conn.send(
                {"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_payload(conn, json.loads(msg.data))
        finally:
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
        return ws

    async def _on_payload(self, conn: Connection, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        redacted = json.loads(json.dumps(payload))
        if isinstance(redacted.get("d"), dict) and "token" in redacted["d"]:
            redacted["d"]["token"] = "<redacted>"
        redacted["shard_id"] = conn.shard_id
        self.received.append(redacted)
        if op == 1:
            conn.heartbeats.append(time.monotonic())
            if self.ack_heartbeats:
                await conn.send({"op": 11, "s": None, "t": None, "d": None})
        elif op == 2:
            await self._identify(conn, data)
        elif op == 6:
            await self._resume(conn, data)
        elif op == 8:
            await self._request_members(conn, data)

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.stub.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard_id, shard_count = data.get("shard") or [0, 1]
        if not 0 <= shard_id < shard_count:
            await conn.ws.close(code=4010, message=b"Invalid shard.")
            return
        intents = int(data.get("intents", 0))
        if intents & MESSAGE_CONTENT and not self.stub.application_flags & PORTAL_MESSAGE_CONTENT:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session = GatewaySession(secrets.token_hex(16), shard_id, shard_count, intents, conn=conn)
        previous = self.by_shard.get(shard_id)
        if previous is not None:
            previous.resumable = False
        self.sessions[session.session_id] = session
        conn.session, conn.shard_id = session, shard_id
        self.identifies.append(
            {"shard_id": shard_id, "shard_count": shard_count, "intents": intents, "at": time.monotonic()}
        )
        guild_ids = [g for g in self.stub.world.guilds if session.covers(g)]
        ready = {
            "v": 10,
            "user": {**self.stub.world.bot_user, "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.stub.resume_gateway_url,
            "application": {"id": str(self.stub.application_id), "flags": self.stub.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["stub-gateway"],
        }
        if data.get("shard") is not None:
            ready["shard"] = [shard_id, shard_count]
        await session.dispatch("READY", ready)
        if intents & GUILDS:
            for guild_id in guild_ids:
                payload = self.stub.world.guild_payload(
                    guild_id, include_all_members=bool(intents & GUILD_MEMBERS)
                )
                await session.dispatch("GUILD_CREATE", payload)
        # Only now does the session receive other dispatches, so none can precede its guilds.
        self.by_shard[shard_id] = session

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> None:
        session = self.sessions.get(data.get("session_id", ""))
        if (
            session is None
            or not session.resumable
            or data.get("token") != self.stub.token
            or self.by_shard.get(session.shard_id) is not session
        ):
            self.invalidations.append({"session_id": data.get("session_id"), "at": time.monotonic()})
            await conn.send({"op": 9, "s": None, "t": None, "d": False})
            return
        seq = data.get("seq") or 0
        async with session.lock:
            session.conn = conn
            conn.session, conn.shard_id = session, session.shard_id
            missed = [frame for frame in session.history if frame["s"] > seq]
            for frame in missed:
                await conn.send(frame)
            session.seq += 1
            frame = {"op": 0, "t": "RESUMED", "s": session.seq, "d": {"_trace": ["stub-gateway"]}}
            session.history.append(frame)
            await conn.send(frame)
        self.resumes.append(
            {"shard_id": session.shard_id, "seq": seq, "replayed": len(missed), "at": time.monotonic()}
        )

    async def _request_members(self, conn: Connection, data: dict[str, Any]) -> None:
        session = conn.session
        if session is None:
            return
        guild_id = int(data["guild_id"])
        members = list(self.stub.world.guild(guild_id).members.values())
        not_found: list[str] = []
        if data.get("user_ids"):
            wanted = [str(u) for u in data["user_ids"]]
            not_found = [u for u in wanted if int(u) not in self.stub.world.guild(guild_id).members]
            members = [m for m in members if m["user"]["id"] in wanted]
        elif data.get("query"):
            query = data["query"].lower()
            members = [m for m in members if m["user"]["username"].lower().startswith(query)]
        if data.get("limit"):
            members = members[: int(data["limit"])]
        chunk = {
            "guild_id": str(guild_id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": not_found,
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    # dispatching into the client

    def _allowed(self, session: GatewaySession, event: str, guild_id: int | None) -> bool:
        if event in MESSAGE_EVENTS:
            return bool(session.intents & (GUILD_MESSAGES if guild_id is not None else DIRECT_MESSAGES))
        if event in REACTION_EVENTS:
            wanted = GUILD_MESSAGE_REACTIONS if guild_id is not None else DIRECT_MESSAGE_REACTIONS
            return bool(session.intents & wanted)
        if event.startswith(("GUILD_", "THREAD_", "CHANNEL_")):
            return bool(session.intents & GUILDS)
        return True

    def targets(self, guild_id: int | None) -> list[GatewaySession]:
        moved_to = self.moved.get(guild_id) if guild_id is not None else None
        if moved_to is not None:
            return [s for s in self.by_shard.values() if s.resumable and s.shard_id == moved_to]
        return [s for s in self.by_shard.values() if s.resumable and s.covers(guild_id)]

    async def dispatch(self, event: str, data: dict[str, Any], *, guild_id: int | None) -> int:
        """Send a dispatch to every session owning ``guild_id``; returns how many received it."""
        sent = 0
        for session in self.targets(guild_id):
            if not self._allowed(session, event, guild_id):
                continue
            payload = data
            if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
                payload = visible_copy(
                    data,
                    content_intent=bool(session.intents & MESSAGE_CONTENT),
                    bot_id=self.stub.world.bot_id,
                )
            await session.dispatch(event, payload)
            sent += 1
        return sent

    async def drop(self, *, code: int, shard_id: int | None, resumable: bool) -> list[GatewaySession]:
        dropped = []
        for session in list(self.by_shard.values()):
            if shard_id is not None and session.shard_id != shard_id:
                continue
            session.resumable = resumable
            conn, session.conn = session.conn, None
            if conn is not None and not conn.ws.closed:
                await conn.ws.close(code=code, message=b"stub dropped the connection")
            dropped.append(session)
        return dropped

    async def close(self) -> None:
        for conn in self.connections:
            if not conn.ws.closed:
                await conn.ws.close(code=1001, message=b"stub shutting down")

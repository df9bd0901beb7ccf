"""REST routes for channels: messages, replies, edits, threads, typing, reactions, lookups."""

from __future__ import annotations

import copy
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from .messages import EPHEMERAL, ApiError
from .router import RestCall, RouteTable
from .validation import validate_message_body

if TYPE_CHECKING:
    from .stub import DiscordStub

ROUTES = RouteTable()
HAS_THREAD = 1 << 5


def attachments_for(stub: DiscordStub, channel_id: int, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for f in files:
        attachment_id = stub.snowflakes.next()
        url = f"{stub.base_url}/attachments/{channel_id}/{attachment_id}/{f['filename']}"
        result.append(
            {
                "id": str(attachment_id),
                "filename": f["filename"],
                "size": f["size"],
                "url": url,
                "proxy_url": url,
                "content_type": f.get("content_type"),
            }
        )
    return result


async def create_bot_message(
    stub: DiscordStub,
    channel_id: int,
    body: dict[str, Any],
    files: list[dict[str, Any]],
    *,
    type: int = 0,
    flags: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Store a message the bot created and echo it to the bot as MESSAGE_CREATE (unless ephemeral)."""
    validate_message_body(body, has_files=bool(files), creating=True)
    reference = body.get("message_reference")
    if reference is not None and int(reference.get("message_id", 0)) not in stub.store.by_id:
        if reference.get("fail_if_not_exists", True):
            raise ApiError(400, 50035, "Invalid Form Body: message_reference: Unknown message")
        reference = None
    message_id = stub.snowflakes.next()
    message = stub.store.build(
        message_id,
        channel_id,
        stub.world.bot_id,
        body.get("content") or "",
        embeds=body.get("embeds"),
        components=body.get("components"),
        flags=int(body.get("flags") or 0) if flags is None else flags,
        type=type,
        attachments=attachments_for(stub, channel_id, files),
        reference=reference,
        allowed_mentions=body.get("allowed_mentions"),
        extra=extra,
    )
    if body.get("nonce") is not None:
        message["nonce"] = body["nonce"]
    stub.store.add(message)
    stub.store.request_bodies[message_id] = copy.deepcopy(body)
    if not message["flags"] & EPHEMERAL:
        await stub.gateway.dispatch(
            "MESSAGE_CREATE", message, guild_id=stub.world.guild_id_of_channel(channel_id)
        )
    return message


async def edit_message(
    stub: DiscordStub, message_id: int, body: dict[str, Any], files: list
) -> dict[str, Any]:
    validate_message_body(body or {}, has_files=bool(files), creating=False)
    body = dict(body or {})
    if files:
        message = stub.store.get(message_id)
        body["attachments"] = attachments_for(stub, int(message["channel_id"]), files)
    message = stub.store.edit(message_id, body)
    if not message["flags"] & EPHEMERAL:
        guild_id = stub.world.guild_id_of_channel(int(message["channel_id"]))
        await stub.gateway.dispatch("MESSAGE_UPDATE", message, guild_id=guild_id)
    return message


async def delete_message(stub: DiscordStub, message_id: int) -> None:
    message = stub.store.delete(message_id)
    if not message["flags"] & EPHEMERAL:
        channel_id = int(message["channel_id"])
        guild_id = stub.world.guild_id_of_channel(channel_id)
        data = {"id": message["id"], "channel_id": message["channel_id"]}
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        await stub.gateway.dispatch("MESSAGE_DELETE", data, guild_id=guild_id)


def _channel(stub: DiscordStub, call: RestCall) -> dict[str, Any]:
    channel = stub.world.channels.get(call.int_param("channel_id"))
    if channel is None:
        raise ApiError(404, 10003, "Unknown Channel")
    return channel


def _message_in_channel(stub: DiscordStub, call: RestCall) -> dict[str, Any]:
    _channel(stub, call)
    message = stub.store.get(call.int_param("message_id"))
    if message["channel_id"] != call.params["channel_id"]:
        raise ApiError(404, 10008, "Unknown Message")
    return message


@ROUTES.add("POST", "/channels/{channel_id}/messages")
async def post_message(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    channel = _channel(stub, call)
    return 200, await create_bot_message(stub, int(channel["id"]), call.json or {}, call.files)


@ROUTES.add("GET", "/channels/{channel_id}/messages")
async def get_messages(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    channel = _channel(stub, call)
    found = sorted(stub.store.in_channel(int(channel["id"])), key=lambda m: int(m["id"]), reverse=True)
    if "before" in call.query:
        found = [m for m in found if int(m["id"]) < int(call.query["before"])]
    if "after" in call.query:
        found = [m for m in found if int(m["id"]) > int(call.query["after"])]
    found = [m for m in found if not m["flags"] & EPHEMERAL]
    return 200, copy.deepcopy(found[: int(call.query.get("limit", 50))])


@ROUTES.add("GET", "/channels/{channel_id}/messages/{message_id}")
async def get_message(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    return 200, copy.deepcopy(_message_in_channel(stub, call))


@ROUTES.add("PATCH", "/channels/{channel_id}/messages/{message_id}")
async def patch_message(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    message = _message_in_channel(stub, call)
    if message["author"]["id"] != str(stub.world.bot_id):
        raise ApiError(403, 50005, "Cannot edit a message authored by another user")
    return 200, await edit_message(stub, int(message["id"]), call.json or {}, call.files)


@ROUTES.add("DELETE", "/channels/{channel_id}/messages/{message_id}")
async def delete_channel_message(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    message = _message_in_channel(stub, call)
    await delete_message(stub, int(message["id"]))
    return 204, None


async def _start_thread(
    stub: DiscordStub, parent: dict[str, Any], thread_id: int, body: dict[str, Any], thread_type: int
) -> dict[str, Any]:
    guild_id = int(parent["guild_id"])
    thread = stub.world.add_thread(
        guild_id,
        thread_id,
        parent_id=int(parent["id"]),
        owner_id=stub.world.bot_id,
        name=body.get("name") or "thread",
        type=thread_type,
    )
    if body.get("auto_archive_duration"):
        thread["thread_metadata"]["auto_archive_duration"] = body["auto_archive_duration"]
    await stub.gateway.dispatch("THREAD_CREATE", {**thread, "newly_created": True}, guild_id=guild_id)
    return copy.deepcopy(thread)


@ROUTES.add("POST", "/channels/{channel_id}/messages/{message_id}/threads")
async def post_thread_from_message(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    message = _message_in_channel(stub, call)
    if "thread" in message:
        raise ApiError(400, 160004, "A thread has already been created for this message")
    parent = _channel(stub, call)
    thread = await _start_thread(stub, parent, int(message["id"]), call.json or {}, 11)
    message["thread"] = thread
    message["flags"] |= HAS_THREAD
    return 201, thread


@ROUTES.add("POST", "/channels/{channel_id}/threads")
async def post_thread(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    parent = _channel(stub, call)
    body = call.json or {}
    return 201, await _start_thread(stub, parent, stub.snowflakes.next(), body, int(body.get("type") or 11))


@ROUTES.add("POST", "/channels/{channel_id}/typing")
async def post_typing(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    channel = _channel(stub, call)
    stub.typing.append({"channel_id": int(channel["id"]), "at": time.monotonic()})
    return 204, None


async def _react(stub: DiscordStub, call: RestCall, *, add: bool) -> tuple[int, Any]:
    message = _message_in_channel(stub, call)
    emoji = urllib.parse.unquote(call.params["emoji"])
    name, _, emoji_id = emoji.partition(":")
    reactions = message.setdefault("reactions", [])
    entry = next((r for r in reactions if r["emoji"]["name"] == name), None)
    if add and entry is None:
        entry = {
            "emoji": {"id": emoji_id or None, "name": name},
            "count": 0,
            "me": False,
            "me_burst": False,
            "burst_colors": [],
            "count_details": {"burst": 0, "normal": 0},
        }
        reactions.append(entry)
    if entry is not None and entry["me"] != add:
        entry["me"] = add
        entry["count"] += 1 if add else -1
        entry["count_details"]["normal"] = entry["count"]
        if entry["count"] <= 0:
            reactions.remove(entry)
    guild_id = stub.world.guild_id_of_channel(int(message["channel_id"]))
    event = {
        "user_id": str(stub.world.bot_id),
        "channel_id": message["channel_id"],
        "message_id": message["id"],
        "emoji": {"id": emoji_id or None, "name": name},
        "burst": False,
        "type": 0,
    }
    if guild_id is not None:
        event["guild_id"] = str(guild_id)
    name_ = "MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE"
    await stub.gateway.dispatch(name_, event, guild_id=guild_id)
    return 204, None


@ROUTES.add("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me")
async def put_reaction(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    return await _react(stub, call, add=True)


@ROUTES.add("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me")
async def delete_reaction(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    return await _react(stub, call, add=False)


@ROUTES.add("GET", "/channels/{channel_id}")
async def get_channel(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    return 200, copy.deepcopy(_channel(stub, call))


@ROUTES.add("POST", "/users/@me/channels")
async def post_dm_channel(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    user_id = int((call.json or {}).get("recipient_id", 0))
    if user_id not in stub.world.users:
        raise ApiError(400, 50007, "Cannot send messages to this user")
    channel = stub.world.dm_channel_for(user_id) or stub.world.add_dm_channel(stub.snowflakes.next(), user_id)
    return 200, copy.deepcopy(channel)


def _guild(stub: DiscordStub, call: RestCall):
    state = stub.world.guilds.get(call.int_param("guild_id"))
    if state is None:
        raise ApiError(404, 10004, "Unknown Guild")
    return state


@ROUTES.add("GET", "/guilds/{guild_id}")
async def get_guild(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    state = _guild(stub, call)
    payload = stub.world.guild_payload(state.id, include_all_members=False)
    for key in ("channels", "threads", "members", "presences", "voice_states"):
        payload.pop(key, None)
    return 200, payload


@ROUTES.add("GET", "/guilds/{guild_id}/channels")
async def get_guild_channels(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    state = _guild(stub, call)
    return 200, copy.deepcopy([stub.world.channels[c] for c in state.channel_ids])


@ROUTES.add("GET", "/guilds/{guild_id}/roles")
async def get_guild_roles(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    return 200, copy.deepcopy(list(_guild(stub, call).roles.values()))


@ROUTES.add("GET", "/guilds/{guild_id}/members/{user_id}")
async def get_member(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    member = _guild(stub, call).members.get(call.int_param("user_id"))
    if member is None:
        raise ApiError(404, 10007, "Unknown Member")
    return 200, copy.deepcopy(member)

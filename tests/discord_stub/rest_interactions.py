"""REST routes an interaction is answered through: the callback, follow-ups and the original response."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .messages import EPHEMERAL, LOADING, ApiError
from .records import InteractionRecord
from .rest_messages import create_bot_message, delete_message, edit_message
from .router import RestCall, RouteTable

if TYPE_CHECKING:
    from .stub import DiscordStub

ROUTES = RouteTable()
PONG, CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 1, 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9


def _interaction_extra(stub: DiscordStub, record: InteractionRecord) -> dict[str, Any]:
    user = record.payload.get("member", {}).get("user") or record.payload.get("user")
    metadata: dict[str, Any] = {
        "id": str(record.id),
        "type": record.type,
        "user": user,
        "authorizing_integration_owners": record.payload["authorizing_integration_owners"],
    }
    if record.type == 3:
        metadata["interacted_message_id"] = record.payload["message"]["id"]
    extra = {
        "webhook_id": str(stub.application_id),
        "application_id": str(stub.application_id),
        "interaction_metadata": metadata,
    }
    if record.type == 2:
        metadata["name"] = record.payload["data"]["name"]
        extra["interaction"] = {
            "id": str(record.id),
            "type": 2,
            "name": record.payload["data"]["name"],
            "user": user,
        }
    return extra


def _by_id(stub: DiscordStub, call: RestCall) -> InteractionRecord:
    record = stub.interactions.get(call.int_param("interaction_id"))
    if record is None or record.token != call.params["token"]:
        raise ApiError(404, 10062, "Unknown interaction")
    return record


@ROUTES.add("POST", "/interactions/{interaction_id}/{token}/callback", auth=False)
async def post_callback(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    record = _by_id(stub, call)
    if record.callbacks:
        raise ApiError(400, 40060, "Interaction has already been acknowledged.")
    if time.monotonic() - record.created_at > stub.interaction_deadline:
        raise ApiError(404, 10062, "Unknown interaction")
    body = call.json or {}
    kind, data = body.get("type"), body.get("data") or {}
    is_component = record.type == 3
    if kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) and not is_component:
        raise ApiError(400, 40043, "Interaction callback type is not valid for this interaction")
    if kind not in (
        PONG,
        CHANNEL_MESSAGE,
        DEFERRED_CHANNEL_MESSAGE,
        DEFERRED_UPDATE,
        UPDATE_MESSAGE,
        AUTOCOMPLETE_RESULT,
        MODAL,
    ):
        raise ApiError(400, 50035, f"Invalid Form Body: type: unsupported callback type {kind}")
    message: dict[str, Any] | None = None
    if kind == CHANNEL_MESSAGE:
        message = await create_bot_message(
            stub,
            record.channel_id,
            data,
            call.files,
            type=20 if record.type == 2 else 0,
            extra=_interaction_extra(stub, record),
        )
        record.original_message_id = int(message["id"])
    elif kind == DEFERRED_CHANNEL_MESSAGE:
        message = await _loading_message(stub, record, (int(data.get("flags") or 0) & EPHEMERAL) | LOADING)
        record.original_message_id = int(message["id"])
    elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE):
        record.original_message_id = int(record.payload["message"]["id"])
        message = stub.store.by_id.get(record.original_message_id)
        if kind == UPDATE_MESSAGE:
            message = await edit_message(stub, record.original_message_id, data, call.files)
    record.callbacks.append(body)
    if not call.flag("with_response"):
        return 204, None
    flags = message["flags"] if message is not None else 0
    answer: dict[str, Any] = {
        "interaction": {
            "id": str(record.id),
            "type": record.type,
            "response_message_loading": bool(flags & LOADING),
            "response_message_ephemeral": bool(flags & EPHEMERAL),
        },
        "resource": {"type": kind},
    }
    if message is not None:
        answer["interaction"]["response_message_id"] = message["id"]
        if kind != DEFERRED_UPDATE:
            answer["resource"]["message"] = message
    return 200, answer


async def _loading_message(stub: DiscordStub, record: InteractionRecord, flags: int) -> dict[str, Any]:
    message = stub.store.build(
        stub.snowflakes.next(),
        record.channel_id,
        stub.world.bot_id,
        "",
        flags=flags,
        type=20 if record.type == 2 else 0,
        extra=_interaction_extra(stub, record),
    )
    stub.store.add(message)
    if not flags & EPHEMERAL:
        guild_id = stub.world.guild_id_of_channel(record.channel_id)
        await stub.gateway.dispatch("MESSAGE_CREATE", message, guild_id=guild_id)
    return message


def _by_token(stub: DiscordStub, call: RestCall) -> InteractionRecord:
    record = stub.interactions_by_token.get(call.params["token"])
    if record is None or call.params["app_id"] != str(stub.application_id) or not record.callbacks:
        raise ApiError(404, 10015, "Unknown Webhook")
    return record


def _owned_message(record: InteractionRecord, message_id: str) -> int:
    if message_id == "@original":
        if record.original_message_id is None:
            raise ApiError(404, 10008, "Unknown Message")
        return record.original_message_id
    if int(message_id) != record.original_message_id and int(message_id) not in record.followup_ids:
        raise ApiError(404, 10008, "Unknown Message")
    return int(message_id)


@ROUTES.add("POST", "/webhooks/{app_id}/{token}", auth=False)
async def post_followup(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    record = _by_token(stub, call)
    body = call.json or {}
    original = record.original
    if original is not None and original["flags"] & LOADING and not record.followup_ids and not record.edits:
        message = await edit_message(stub, int(original["id"]), body, call.files)
    else:
        channel_id = int(call.query.get("thread_id") or record.channel_id)
        message = await create_bot_message(
            stub, channel_id, body, call.files, extra=_interaction_extra(stub, record)
        )
    record.followup_ids.append(int(message["id"]))
    return (200, message) if call.flag("wait") else (204, None)


@ROUTES.add("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", auth=False)
async def get_webhook_message(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    record = _by_token(stub, call)
    return 200, stub.store.get(_owned_message(record, call.params["message_id"]))


@ROUTES.add("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", auth=False)
async def patch_webhook_message(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    record = _by_token(stub, call)
    message_id = _owned_message(record, call.params["message_id"])
    message = await edit_message(stub, message_id, call.json or {}, call.files)
    record.edits += 1
    return 200, message


@ROUTES.add("DELETE", "/webhooks/{app_id}/{token}/messages/{message_id}", auth=False)
async def delete_webhook_message(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    record = _by_token(stub, call)
    await delete_message(stub, _owned_message(record, call.params["message_id"]))
    return 204, None

"""REST routes for login and setup: gateway discovery, the bot user, application info, commands."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .messages import ApiError
from .router import RestCall, RouteTable

if TYPE_CHECKING:
    from .stub import DiscordStub

ROUTES = RouteTable()


@ROUTES.add("GET", "/gateway", auth=False)
async def get_gateway(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    return 200, {"url": stub.gateway_url}


@ROUTES.add("GET", "/gateway/bot")
async def get_gateway_bot(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    limit = {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
    return 200, {"url": stub.gateway_url, "shards": stub.shard_count, "session_start_limit": limit}


@ROUTES.add("GET", "/users/@me")
async def get_me(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    return 200, {**stub.world.bot_user, "verified": True, "mfa_enabled": False, "flags": 0, "email": None}


@ROUTES.add("GET", "/users/{user_id}")
async def get_user(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    user = stub.world.users.get(call.int_param("user_id"))
    if user is None:
        raise ApiError(404, 10013, "Unknown User")
    return 200, user


@ROUTES.add("GET", "/oauth2/applications/@me")
async def get_application(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    return 200, {
        "id": str(stub.application_id),
        "name": stub.world.bot_user["username"],
        "description": "",
        "summary": "",
        "icon": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": stub.world.user(stub.owner_user_id),
        "team": None,
        "verify_key": "0" * 64,
        "flags": stub.application_flags,
        "rpc_origins": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "bot": stub.world.bot_user,
    }


def _check_application(stub: DiscordStub, call: RestCall) -> None:
    if call.params["app_id"] != str(stub.application_id):
        raise ApiError(403, 50001, "Missing Access")


def _store_commands(stub: DiscordStub, guild_id: int | None, body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise ApiError(400, 50035, "Invalid Form Body: expected a list of commands")
    existing = {(c["name"], c.get("type", 1)): c for c in stub.commands.get(guild_id, [])}
    stored = []
    for i, command in enumerate(body):
        if not command.get("name"):
            raise ApiError(400, 50035, f"Invalid Form Body: {i}.name: This field is required")
        command_type = command.get("type", 1)
        if command_type == 1 and not command.get("description"):
            raise ApiError(400, 50035, f"Invalid Form Body: {i}.description: This field is required")
        previous = existing.get((command["name"], command_type))
        entry = copy.deepcopy(command)
        entry.setdefault("type", 1)
        entry.setdefault("description", "")
        entry.setdefault("options", [])
        if entry.get("default_member_permissions") is not None:  # Discord answers permissions as strings
            entry["default_member_permissions"] = str(entry["default_member_permissions"])
        entry.setdefault("default_member_permissions", None)
        entry.setdefault("nsfw", False)
        entry.update(
            id=previous["id"] if previous else str(stub.snowflakes.next()),
            application_id=str(stub.application_id),
            version=str(stub.snowflakes.next()),
        )
        if guild_id is not None:
            entry["guild_id"] = str(guild_id)
        stored.append(entry)
    stub.commands[guild_id] = stored
    return copy.deepcopy(stored)


@ROUTES.add("PUT", "/applications/{app_id}/commands")
async def put_global_commands(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    _check_application(stub, call)
    return 200, _store_commands(stub, None, call.json)


@ROUTES.add("GET", "/applications/{app_id}/commands")
async def get_global_commands(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    _check_application(stub, call)
    return 200, copy.deepcopy(stub.commands.get(None, []))


@ROUTES.add("PUT", "/applications/{app_id}/guilds/{guild_id}/commands")
async def put_guild_commands(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    _check_application(stub, call)
    guild_id = call.int_param("guild_id")
    if guild_id not in stub.world.guilds:
        raise ApiError(403, 50001, "Missing Access")
    return 200, _store_commands(stub, guild_id, call.json)


@ROUTES.add("GET", "/applications/{app_id}/guilds/{guild_id}/commands")
async def get_guild_commands(stub: DiscordStub, call: RestCall) -> tuple[int, Any]:
    _check_application(stub, call)
    return 200, copy.deepcopy(stub.commands.get(call.int_param("guild_id"), []))

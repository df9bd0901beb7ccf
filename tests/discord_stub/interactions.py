"""INTERACTION_CREATE payloads: slash-command options typed from the registered schema, component clicks."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .messages import find_component

if TYPE_CHECKING:
    from .stub import DiscordStub

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(3, 12)


class InteractionRejected(Exception):
    """Discord's own client would not let the user send this interaction."""


def find_command(stub: DiscordStub, name: str, guild_id: int | None) -> tuple[dict[str, Any], bool]:
    for scope in ([guild_id] if guild_id is not None else []) + [None]:
        for command in stub.commands.get(scope, []):
            if command["name"] == name and command.get("type", 1) == 1:
                return command, scope is not None
    raise InteractionRejected(f"no slash command {name!r} is registered for guild {guild_id} or globally")


def _descend(
    schema: dict[str, Any], subcommand: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Walk ``"group sub"`` down the schema; returns (outer option wrappers, leaf option schemas)."""
    wrappers: list[dict[str, Any]] = []
    options = schema.get("options") or []
    for part in (subcommand or "").split():
        match = next(
            (o for o in options if o["name"] == part and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)), None
        )
        if match is None:
            raise InteractionRejected(f"{schema['name']!r} has no subcommand {part!r}")
        wrappers.append({"name": part, "type": match["type"], "options": []})
        options = match.get("options") or []
    if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in options):
        raise InteractionRejected(f"{schema['name']!r} needs a subcommand")
    return wrappers, options


def _resolve(
    stub: DiscordStub, guild_id: int | None, kind: int, value: Any, resolved: dict[str, dict], user_id: int
) -> Any:
    world = stub.world
    if kind == STRING:
        return str(value)
    if kind == INTEGER:
        return int(value)
    if kind == NUMBER:
        return float(value)
    if kind == BOOLEAN:
        return bool(value)
    if kind == ATTACHMENT:
        attachment_id = str(stub.snowflakes.next())
        data = dict(value) if isinstance(value, dict) else {"filename": str(value)}
        data.setdefault("size", 0)
        data.setdefault("url", f"{stub.base_url}/attachments/{attachment_id}/{data['filename']}")
        data.setdefault("proxy_url", data["url"])
        resolved.setdefault("attachments", {})[attachment_id] = {"id": attachment_id, **data}
        return attachment_id
    snowflake = int(value)
    is_role = guild_id is not None and snowflake in world.guild(guild_id).roles
    if kind == ROLE or (kind == MENTIONABLE and is_role):
        resolved.setdefault("roles", {})[str(snowflake)] = copy.deepcopy(
            world.guild(guild_id).roles[snowflake]
        )
    elif kind == CHANNEL:
        channel = copy.deepcopy(world.channel(snowflake))
        channel["permissions"] = str(world.permissions(guild_id, user_id, snowflake)) if guild_id else "0"
        resolved.setdefault("channels", {})[str(snowflake)] = channel
    else:
        resolved.setdefault("users", {})[str(snowflake)] = copy.deepcopy(world.user(snowflake))
        if guild_id is not None and world.member(guild_id, snowflake) is not None:
            member = world.member_with_permissions(guild_id, snowflake)
            member.pop("user")
            resolved.setdefault("members", {})[str(snowflake)] = member
    return str(snowflake)


def _check_limits(name: str, key: str, spec: dict[str, Any], converted: Any, stub: DiscordStub) -> None:
    """What Discord's client enforces from the schema before the interaction is sent."""
    low, high = spec.get("min_value"), spec.get("max_value")
    if low is not None and converted < low or high is not None and converted > high:
        raise InteractionRejected(f"{converted!r} is outside {low}..{high} for option {key!r} of {name!r}")
    low, high = spec.get("min_length"), spec.get("max_length")
    if low is not None and len(converted) < low or high is not None and len(converted) > high:
        raise InteractionRejected(f"option {key!r} of {name!r} must be {low}..{high} characters long")
    channel_types = spec.get("channel_types")
    if spec["type"] == CHANNEL and channel_types:
        kind = stub.world.channel(int(converted))["type"]
        if kind not in channel_types:
            raise InteractionRejected(f"a channel of type {kind} can't be picked for option {key!r}")


def command_data(
    stub: DiscordStub,
    name: str,
    options: dict[str, Any] | list,
    *,
    guild_id: int | None,
    subcommand: str | None,
    user_id: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The interaction ``data`` for a slash command, and the command's registered schema."""
    schema, is_guild_command = find_command(stub, name, guild_id)
    wrappers, leaf_schema = _descend(schema, subcommand)
    resolved: dict[str, dict] = {}
    if isinstance(options, list):
        # Raw options, as another client could send them: typed values, no checks by Discord's client.
        leaf = copy.deepcopy(options)
        for option in leaf:
            if option["type"] in (USER, CHANNEL, ROLE, MENTIONABLE):
                _resolve(stub, guild_id, option["type"], option["value"], resolved, user_id)
    else:
        by_name = {o["name"]: o for o in leaf_schema}
        unknown = set(options) - set(by_name)
        if unknown:
            raise InteractionRejected(f"{name!r} has no option(s) {sorted(unknown)}")
        missing = [o["name"] for o in leaf_schema if o.get("required") and o["name"] not in options]
        if missing:
            raise InteractionRejected(f"{name!r} requires option(s) {missing}")
        leaf = []
        for key, value in options.items():
            spec = by_name[key]
            converted = _resolve(stub, guild_id, spec["type"], value, resolved, user_id)
            choices = [c["value"] for c in spec.get("choices") or []]
            if choices and converted not in choices:
                raise InteractionRejected(f"{value!r} is not a choice of option {key!r}: {choices}")
            _check_limits(name, key, spec, converted, stub)
            leaf.append({"name": key, "type": spec["type"], "value": converted})
    top = leaf
    for wrapper in reversed(wrappers):
        wrapper["options"] = top
        top = [wrapper]
    data: dict[str, Any] = {"id": schema["id"], "name": name, "type": 1, "options": top}
    if resolved:
        data["resolved"] = resolved
    if is_guild_command:
        data["guild_id"] = str(guild_id)
    return data, schema


def base_payload(
    stub: DiscordStub,
    interaction_id: int,
    token: str,
    kind: int,
    *,
    user_id: int,
    guild_id: int | None,
    channel_id: int,
) -> dict[str, Any]:
    world = stub.world
    channel = copy.deepcopy(world.channel(channel_id))
    payload: dict[str, Any] = {
        "id": str(interaction_id),
        "application_id": str(stub.application_id),
        "type": kind,
        "token": token,
        "version": 1,
        "channel_id": str(channel_id),
        "channel": channel,
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    if guild_id is not None:
        bot_permissions = str(world.permissions(guild_id, world.bot_id, channel_id))
        channel["permissions"] = str(world.permissions(guild_id, user_id, channel_id))
        payload.update(
            guild_id=str(guild_id),
            guild={"id": str(guild_id), "locale": "en-US", "features": []},
            guild_locale="en-US",
            member=world.member_with_permissions(guild_id, user_id),
            app_permissions=bot_permissions,
            authorizing_integration_owners={"0": str(guild_id)},
            context=0,
        )
    else:
        payload.update(
            user=copy.deepcopy(world.user(user_id)),
            app_permissions="0",
            authorizing_integration_owners={"1": str(user_id)},
            context=1,
        )
    return payload


def component_data(message: dict[str, Any], custom_id: str, values: list[str] | None) -> dict[str, Any]:
    component = find_component(message.get("components") or [], custom_id)
    if component is None:
        raise InteractionRejected(f"message {message['id']} has no component with custom_id {custom_id!r}")
    if component.get("disabled"):
        raise InteractionRejected(f"component {custom_id!r} is disabled")
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
    if component.get("id") is not None:
        data["id"] = component["id"]
    if values is not None:
        data["values"] = [str(v) for v in values]
    elif component["type"] != 2:
        raise InteractionRejected(f"component {custom_id!r} is a select menu; pass values")
    return data

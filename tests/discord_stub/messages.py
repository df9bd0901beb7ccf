"""Message payloads and the store of every message in the simulated world."""

from __future__ import annotations

import copy
import re
from typing import Any

from .snowflakes import iso_now
from .world import World

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
EPHEMERAL = 1 << 6
LOADING = 1 << 7


class ApiError(Exception):
    """A Discord JSON error answer: HTTP status, error code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class MessageStore:
    """Every message (users' and the bot's) as it stands now, keyed by id."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.by_id: dict[int, dict[str, Any]] = {}
        self.deleted: dict[int, dict[str, Any]] = {}
        self.request_bodies: dict[int, dict[str, Any]] = {}

    def get(self, message_id: int) -> dict[str, Any]:
        try:
            return self.by_id[int(message_id)]
        except KeyError:
            raise ApiError(404, 10008, "Unknown Message") from None

    def in_channel(self, channel_id: int) -> list[dict[str, Any]]:
        return [m for m in self.by_id.values() if m["channel_id"] == str(channel_id)]

    def build(
        self,
        message_id: int,
        channel_id: int,
        author_id: int,
        content: str,
        *,
        embeds: list | None = None,
        components: list | None = None,
        flags: int = 0,
        type: int = 0,
        attachments: list | None = None,
        reference: dict[str, Any] | None = None,
        allowed_mentions: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        guild_id = self.world.guild_id_of_channel(channel_id)
        author = self.world.user(author_id)
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": embeds or [],
            "components": components or [],
            "reactions": [],
            "pinned": False,
            "type": type,
            "flags": flags,
        }
        if guild_id is not None:
            message["guild_id"] = str(guild_id)
            member = self.world.member(guild_id, author_id)
            if member is not None:
                message["member"] = {k: v for k, v in member.items() if k != "user"}
        if reference is not None:
            referenced = self.get(reference["message_id"])
            message["type"] = 19
            message["message_reference"] = {
                "type": 0,
                "message_id": referenced["id"],
                "channel_id": referenced["channel_id"],
                **({"guild_id": referenced["guild_id"]} if "guild_id" in referenced else {}),
            }
            message["referenced_message"] = {k: v for k, v in referenced.items() if k != "referenced_message"}
        message.update(extra or {})
        self._fill_mentions(message, allowed_mentions)
        return message

    def _fill_mentions(self, message: dict[str, Any], allowed: dict[str, Any] | None) -> None:
        content = message["content"]
        user_ids = list(dict.fromkeys(int(u) for u in USER_MENTION.findall(content)))
        role_ids = list(dict.fromkeys(ROLE_MENTION.findall(content)))
        replied = message.get("referenced_message")
        if allowed is not None:
            parse = allowed.get("parse", [])
            if "users" not in parse:
                listed = {int(u) for u in allowed.get("users", [])}
                user_ids = [u for u in user_ids if u in listed]
            if "roles" not in parse:
                listed_roles = {str(r) for r in allowed.get("roles", [])}
                role_ids = [r for r in role_ids if r in listed_roles]
        reply_ping = allowed.get("replied_user", True) if allowed is not None else True
        if replied is not None and reply_ping and int(replied["author"]["id"]) not in user_ids:
            user_ids.append(int(replied["author"]["id"]))
        mentions = []
        guild_id = message.get("guild_id")
        for user_id in user_ids:
            user = dict(self.world.user(user_id))
            if guild_id is not None:
                member = self.world.member(int(guild_id), user_id)
                if member is not None:
                    user["member"] = {k: v for k, v in member.items() if k != "user"}
            mentions.append(user)
        message["mentions"] = mentions
        message["mention_roles"] = role_ids
        message["mention_everyone"] = "@everyone" in content and (
            allowed is None or "everyone" in allowed.get("parse", [])
        )

    def add(self, message: dict[str, Any]) -> dict[str, Any]:
        self.by_id[int(message["id"])] = message
        channel = self.world.channels.get(int(message["channel_id"]))
        if channel is not None:
            channel["last_message_id"] = message["id"]
        return message

    def edit(self, message_id: int, body: dict[str, Any]) -> dict[str, Any]:
        message = self.get(message_id)
        for key in ("content", "embeds", "components", "attachments"):
            if key in body and body[key] is not None:
                message[key] = body[key]
        kept = message["flags"] & EPHEMERAL
        if body.get("flags") is not None:
            message["flags"] = kept | (int(body["flags"]) & ~(EPHEMERAL | LOADING))
        else:
            message["flags"] = kept | (message["flags"] & ~(EPHEMERAL | LOADING))
        message["edited_timestamp"] = iso_now()
        self._fill_mentions(message, body.get("allowed_mentions"))
        return message

    def delete(self, message_id: int) -> dict[str, Any]:
        message = self.get(message_id)
        del self.by_id[int(message_id)]
        self.deleted[int(message_id)] = message
        return message


def find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    for component in components:
        if component.get("custom_id") == custom_id:
            return component
        for key in ("components", "accessory"):
            inner = component.get(key)
            if isinstance(inner, dict):
                inner = [inner]
            if inner:
                found = find_component(inner, custom_id)
                if found is not None:
                    return found
    return None


def visible_copy(message: dict[str, Any], *, content_intent: bool, bot_id: int) -> dict[str, Any]:
    """The message as a bot with or without the message content intent receives it."""
    data = copy.deepcopy(message)
    if content_intent or "guild_id" not in data:
        return data
    if data["author"]["id"] == str(bot_id) or any(u["id"] == str(bot_id) for u in data["mentions"]):
        return data
    data.update(content="", embeds=[], attachments=[], components=[])
    return data

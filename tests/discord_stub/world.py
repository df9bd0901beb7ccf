"""The simulated Discord world: users, guilds, channels, roles, members and their payloads."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .snowflakes import iso_now

ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ALL_PERMISSIONS = (1 << 53) - 1
DEFAULT_EVERYONE_PERMISSIONS = (
    (1 << 6)  # add reactions
    | (1 << 10)  # view channel
    | (1 << 11)  # send messages
    | (1 << 14)  # embed links
    | (1 << 15)  # attach files
    | (1 << 16)  # read message history
    | (1 << 18)  # use external emojis
    | (1 << 31)  # use application commands
    | (1 << 35)  # create public threads
    | (1 << 38)  # send messages in threads
)

TEXT_CHANNEL_TYPES = {0, 5, 10, 11, 12, 15}
THREAD_TYPES = {10, 11, 12}
VOICE_TYPES = {2, 13}


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": None if bot else name,
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


@dataclass
class GuildState:
    data: dict[str, Any]
    roles: dict[int, dict[str, Any]] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    thread_ids: list[int] = field(default_factory=list)
    members: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def owner_id(self) -> int:
        return int(self.data["owner_id"])


class World:
    """Guilds, channels, roles, members and users, with Discord-shaped payloads."""

    def __init__(self, bot_user: dict[str, Any]) -> None:
        self.bot_user = bot_user
        self.bot_id = int(bot_user["id"])
        self.users: dict[int, dict[str, Any]] = {self.bot_id: bot_user}
        self.guilds: dict[int, GuildState] = {}
        self.channels: dict[int, dict[str, Any]] = {}

    # users

    def user(self, user_id: int, name: str | None = None, *, bot: bool = False) -> dict[str, Any]:
        user_id = int(user_id)
        existing = self.users.get(user_id)
        if existing is None:
            existing = self.users[user_id] = user_payload(user_id, name or f"user{user_id}", bot=bot)
        elif name is not None:
            existing["username"] = name
            if not existing["bot"]:
                existing["global_name"] = name
        return existing

    # guilds

    def guild(self, guild_id: int) -> GuildState:
        try:
            return self.guilds[int(guild_id)]
        except KeyError:
            raise KeyError(f"unknown guild {guild_id}; call add_guild first") from None

    def add_guild(
        self,
        guild_id: int,
        *,
        name: str,
        owner_id: int,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        bot_roles: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        guild_id = int(guild_id)
        data = {
            "id": str(guild_id),
            "name": name,
            "owner_id": str(owner_id),
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "features": [],
            "emojis": [],
            "stickers": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "application_id": None,
            "vanity_url_code": None,
            "premium_progress_bar_enabled": False,
            "max_members": 500000,
            "large": False,
            "unavailable": False,
            "joined_at": iso_now(),
        }
        state = self.guilds[guild_id] = GuildState(data=data)
        self.add_role(guild_id, guild_id, name="@everyone", permissions=everyone_permissions, position=0)
        self.add_member(guild_id, owner_id)
        self.add_member(guild_id, self.bot_id, name=self.bot_user["username"], roles=bot_roles)
        return state.data

    def add_role(
        self, guild_id: int, role_id: int, *, name: str, permissions: int, position: int | None = None
    ) -> dict[str, Any]:
        state = self.guild(guild_id)
        role = {
            "id": str(role_id),
            "name": name,
            "permissions": str(permissions),
            "position": len(state.roles) if position is None else position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": True,
            "flags": 0,
            "icon": None,
            "unicode_emoji": None,
        }
        state.roles[int(role_id)] = role
        return role

    def add_channel(
        self,
        guild_id: int,
        channel_id: int,
        *,
        name: str = "general",
        type: int = 0,
        parent_id: int | None = None,
    ) -> dict[str, Any]:
        state = self.guild(guild_id)
        channel = {
            "id": str(channel_id),
            "guild_id": str(guild_id),
            "type": type,
            "name": name,
            "position": len(state.channel_ids),
            "permission_overwrites": [],
            "nsfw": False,
            "topic": None,
            "parent_id": None if parent_id is None else str(parent_id),
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        if type in VOICE_TYPES:
            channel.update(bitrate=64000, user_limit=0, rtc_region=None, video_quality_mode=1)
        self.channels[int(channel_id)] = channel
        state.channel_ids.append(int(channel_id))
        return channel

    def add_thread(
        self, guild_id: int, thread_id: int, *, parent_id: int, owner_id: int, name: str, type: int = 11
    ) -> dict[str, Any]:
        state = self.guild(guild_id)
        now = iso_now()
        thread = {
            "id": str(thread_id),
            "guild_id": str(guild_id),
            "parent_id": str(parent_id),
            "owner_id": str(owner_id),
            "name": name,
            "type": type,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": now,
                "locked": False,
                "create_timestamp": now,
            },
        }
        self.channels[int(thread_id)] = thread
        state.thread_ids.append(int(thread_id))
        return thread

    def add_dm_channel(self, channel_id: int, user_id: int) -> dict[str, Any]:
        channel = {
            "id": str(channel_id),
            "type": 1,
            "last_message_id": None,
            "recipients": [self.user(user_id)],
        }
        self.channels[int(channel_id)] = channel
        return channel

    def dm_channel_for(self, user_id: int) -> dict[str, Any] | None:
        for channel in self.channels.values():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == str(user_id):
                return channel
        return None

    def channel(self, channel_id: int) -> dict[str, Any]:
        try:
            return self.channels[int(channel_id)]
        except KeyError:
            raise KeyError(f"unknown channel {channel_id}; call add_channel first") from None

    def guild_id_of_channel(self, channel_id: int) -> int | None:
        channel = self.channels.get(int(channel_id))
        if channel is None or "guild_id" not in channel:
            return None
        return int(channel["guild_id"])

    # members

    def add_member(
        self,
        guild_id: int,
        user_id: int,
        *,
        name: str | None = None,
        roles: tuple[int, ...] | list[int] = (),
        nick: str | None = None,
        bot: bool = False,
    ) -> dict[str, Any]:
        state = self.guild(guild_id)
        user = self.user(user_id, name, bot=bot)
        member = {
            "user": user,
            "roles": [str(r) for r in roles],
            "nick": nick,
            "avatar": None,
            "banner": None,
            "joined_at": iso_now(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        state.members[int(user_id)] = member
        return member

    def member(self, guild_id: int, user_id: int) -> dict[str, Any] | None:
        return self.guild(guild_id).members.get(int(user_id))

    def ensure_member(self, guild_id: int, user_id: int) -> dict[str, Any]:
        return self.member(guild_id, user_id) or self.add_member(guild_id, user_id)

    def permissions(self, guild_id: int, user_id: int, channel_id: int | None = None) -> int:
        """A member's permissions in the guild, or in one of its channels (with its overwrites)."""
        state = self.guild(guild_id)
        if int(user_id) == state.owner_id:
            return ALL_PERMISSIONS
        member = state.members.get(int(user_id))
        role_ids = [int(r) for r in member["roles"]] if member else []
        value = int(state.roles[state.id]["permissions"])
        for role_id in role_ids:
            role = state.roles.get(role_id)
            if role is not None:
                value |= int(role["permissions"])
        if value & ADMINISTRATOR:
            return ALL_PERMISSIONS
        channel = self.channels.get(int(channel_id)) if channel_id is not None else None
        if channel is not None and channel.get("parent_id") and channel.get("type") in THREAD_TYPES:
            channel = self.channels.get(int(channel["parent_id"]))  # a thread has its channel's overwrites
        if channel is None:
            return value
        # Discord's order: @everyone's overwrite, then the member's roles' together, then the member's own.
        overwrites = {(o["type"], int(o["id"])): o for o in channel.get("permission_overwrites") or []}
        steps = [[overwrites.get((0, state.id))], [overwrites.get((0, r)) for r in role_ids]]
        steps.append([overwrites.get((1, int(user_id)))])
        for step in steps:
            allow = deny = 0
            for overwrite in filter(None, step):
                allow |= int(overwrite["allow"])
                deny |= int(overwrite["deny"])
            value = (value & ~deny) | allow
        return value

    def set_overwrite(
        self, channel_id: int, target_id: int, *, allow: int = 0, deny: int = 0, role: bool = False
    ) -> dict[str, Any]:
        """A channel's permission overwrite for a member (or, with ``role``, a role)."""
        channel = self.channel(channel_id)
        kind = 0 if role else 1
        kept = [
            o
            for o in channel["permission_overwrites"]
            if not (o["type"] == kind and int(o["id"]) == int(target_id))
        ]
        overwrite = {"id": str(target_id), "type": kind, "allow": str(allow), "deny": str(deny)}
        channel["permission_overwrites"] = [*kept, overwrite]
        return overwrite

    def member_with_permissions(self, guild_id: int, user_id: int) -> dict[str, Any]:
        member = copy.deepcopy(self.ensure_member(guild_id, user_id))
        member["permissions"] = str(self.permissions(guild_id, user_id))
        return member

    # payloads

    def guild_payload(self, guild_id: int, *, include_all_members: bool) -> dict[str, Any]:
        state = self.guild(guild_id)
        members = list(state.members.values())
        if not include_all_members:
            members = [m for m in members if m["user"]["id"] == str(self.bot_id)]
        payload = copy.deepcopy(state.data)
        payload.update(
            roles=list(state.roles.values()),
            channels=[self.channels[c] for c in state.channel_ids],
            threads=[self.channels[t] for t in state.thread_ids],
            members=members,
            member_count=len(state.members),
            presences=[],
            voice_states=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
        )
        return copy.deepcopy(payload)

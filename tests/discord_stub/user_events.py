"""Events from users into the bot: messages, slash commands and component clicks."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from .interactions import InteractionRejected, base_payload, command_data, component_data
from .records import InteractionRecord
from .world import ADMINISTRATOR

if TYPE_CHECKING:
    from .stub import DiscordStub


class UserEvents:
    """Mixed into DiscordStub; each coroutine returns once the event has been dispatched."""

    async def send_message(
        self: DiscordStub,
        channel_id: int,
        author_id: int,
        content: str,
        *,
        mentions_bot: bool = False,
        reference_message_id: int | None = None,
        embeds: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        guild_id: int | None = None,
    ) -> dict[str, Any]:
        """A user posts ``content`` (MESSAGE_CREATE); the message is stored so replies can reference it."""
        guild_id = self._guild_of(channel_id, guild_id)
        if guild_id is not None:
            self.world.ensure_member(guild_id, author_id)
        else:
            self.world.user(author_id)
        if mentions_bot and not re.search(rf"<@!?{self.bot_user_id}>", content):
            content = f"<@{self.bot_user_id}> {content}"
        reference = {"message_id": reference_message_id} if reference_message_id is not None else None
        message = self.store.build(
            self.snowflakes.next(),
            channel_id,
            author_id,
            content,
            embeds=embeds,
            attachments=attachments,
            reference=reference,
        )
        self.store.add(message)
        await self.wait_for_guild_session(guild_id)
        await self.gateway.dispatch("MESSAGE_CREATE", message, guild_id=guild_id)
        return copy.deepcopy(message)

    async def send_dm(self: DiscordStub, author_id: int, content: str, **kwargs: Any) -> dict[str, Any]:
        """A user writes to the bot in their DM channel (created on first use)."""
        channel = self.world.dm_channel_for(author_id) or self.world.add_dm_channel(
            self.snowflakes.next(), author_id
        )
        return await self.send_message(int(channel["id"]), author_id, content, **kwargs)

    async def invoke_command(
        self: DiscordStub,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None = None,
        *,
        user_id: int,
        channel_id: int,
        subcommand: str | None = None,
        guild_id: int | None = None,
        enforce_permissions: bool = True,
    ) -> InteractionRecord:
        """A user runs ``/name [subcommand] options``; option types come from the registered schema."""
        guild_id = self._guild_of(channel_id, guild_id)
        if guild_id is not None:
            self.world.ensure_member(guild_id, user_id)
        data, schema = command_data(
            self, name, options or {}, guild_id=guild_id, subcommand=subcommand, user_id=user_id
        )
        if enforce_permissions:
            self._check_command_allowed(schema, guild_id, user_id)

        def build(interaction_id: int, token: str) -> dict[str, Any]:
            payload = base_payload(
                self, interaction_id, token, 2, user_id=user_id, guild_id=guild_id, channel_id=channel_id
            )
            payload["data"] = data
            return payload

        record = self.new_interaction(2, build, channel_id)
        await self.wait_for_guild_session(guild_id)
        await self.gateway.dispatch("INTERACTION_CREATE", record.payload, guild_id=guild_id)
        return record

    def _guild_of(self: DiscordStub, channel_id: int, guild_id: int | None) -> int | None:
        self.world.channel(channel_id)
        actual = self.world.guild_id_of_channel(channel_id)
        if guild_id is not None and guild_id != actual:
            raise ValueError(f"channel {channel_id} belongs to guild {actual}, not {guild_id}")
        return actual

    def _check_command_allowed(
        self: DiscordStub, schema: dict[str, Any], guild_id: int | None, user_id: int
    ) -> None:
        if guild_id is None:
            contexts = schema.get("contexts")
            if schema.get("dm_permission") is False or (contexts is not None and 1 not in contexts):
                raise InteractionRejected(f"/{schema['name']} is not available in DMs")
            return
        required = schema.get("default_member_permissions")
        if required is None:
            return
        required = int(required) or ADMINISTRATOR
        if self.world.permissions(guild_id, user_id) & required != required:
            raise InteractionRejected(f"user {user_id} lacks permissions {required:#x} for /{schema['name']}")

    async def click_button(
        self: DiscordStub,
        message: dict[str, Any] | int,
        custom_id: str,
        *,
        user_id: int,
        values: list[str] | None = None,
    ) -> InteractionRecord:
        """A user clicks a button (or, with ``values``, picks from a select) on a message the bot sent."""
        message_id = int(message["id"] if isinstance(message, dict) else message)
        current = copy.deepcopy(self.store.get(message_id))
        channel_id = int(current["channel_id"])
        guild_id = self.world.guild_id_of_channel(channel_id)
        data = component_data(current, custom_id, values)

        def build(interaction_id: int, token: str) -> dict[str, Any]:
            payload = base_payload(
                self, interaction_id, token, 3, user_id=user_id, guild_id=guild_id, channel_id=channel_id
            )
            payload.update(data=data, message=current)
            return payload

        record = self.new_interaction(3, build, channel_id)
        await self.wait_for_guild_session(guild_id)
        await self.gateway.dispatch("INTERACTION_CREATE", record.payload, guild_id=guild_id)
        return record

    async def select(
        self: DiscordStub, message: dict[str, Any] | int, custom_id: str, values: list[str], *, user_id: int
    ) -> InteractionRecord:
        return await self.click_button(message, custom_id, user_id=user_id, values=values)

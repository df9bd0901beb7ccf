"""``/settings``: a server's admins set newsdesk up for their server, in force at once, kept in the database.

Hidden from members by default (Manage Server) and checked on every use like ``/reload``; replies are
private. A server's own value overrides the environment's default; ``/settings reset`` goes back to them.
``bot.cogs.server_upkeep`` keeps the settings in step with other processes and with Discord.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import cast

import discord
from discord import app_commands
from discord.ext import commands

from retrieval import SETTING_NAMES, ServerSettings, StoreError

from ..client import NewsBot, within_deadline
from ..permissions import may_change_admins, refuse_unless_admin
from ..render import clip, escape
from ..server_settings import DEFAULT_FROM, Effective
from ..views import OwnedView

log = logging.getLogger(__name__)

MAX_LISTED = 25  # Q&A channels or admin roles per server
# What the bot needs in a Q&A channel to read a question and reply to it with an answer.
QA_CHANNEL_PERMISSIONS = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "read_message_history": "Read Message History",
}
LABELS = {
    "qa_channels": "Q&A channels",
    "admin_roles": "Admin roles",
    "results": "Answers per reply",
    "cooldown": "Cooldown between questions",
}
MESSAGE_CONTENT_OFF = (
    "I can't read the messages there yet: newsdesk runs without Discord's **Message Content** intent. "
    "Whoever runs newsdesk can turn it on: enable **Message Content Intent** in the Discord developer "
    "portal (Bot > Privileged Gateway Intents), set `NEWSDESK_MESSAGE_CONTENT` to `auto` or `on`, and "
    "restart newsdesk. Until then members can mention me or use /ask."
)


def missing_permissions(channel: discord.abc.GuildChannel) -> list[str]:
    """What the bot lacks in ``channel`` to answer there (empty when it can)."""
    me = channel.guild.me
    if me is None:
        return []  # the bot's own member is not cached: Discord will tell when a reply fails
    have = channel.permissions_for(me)
    return [label for name, label in QA_CHANNEL_PERMISSIONS.items() if not getattr(have, name)]


def listed(ids: frozenset[int], mention: str) -> str:
    return ", ".join(mention.format(i) for i in sorted(ids)) if ids else "none"


def value_text(server: Effective, name: str) -> str:
    if name == "qa_channels":
        return listed(server.qa_channels, "<#{}>")
    if name == "admin_roles":
        return listed(server.admin_roles, "<@&{}>")
    if name == "results":
        return str(server.results)
    return f"{server.cooldown} s" if server.cooldown else "off"


def source_text(server: Effective, name: str, who: dict[str, tuple[str, str | None]]) -> str:
    if not server.is_set_here(name):
        return f"default (`{DEFAULT_FROM[name]}`)"
    at, user_id = who.get(name, ("", None))
    by = f" by <@{user_id}>" if user_id else ""
    return f"set here{by}" + (f" on {at[:10]}" if at else "")


class ConfirmReset(OwnedView):
    """The two buttons under ``/settings reset``: only the admin who asked can press them."""

    def __init__(self, cog: SettingsCog, owner_id: int, guild_id: int) -> None:
        super().__init__(owner_id, timeout=120)
        self.cog = cog
        self.guild_id = guild_id

    async def _finish(self, interaction: discord.Interaction, text: str) -> None:
        for item in self.children:
            item.disabled = True  # type: ignore[attr-defined]
        self.stop()
        if interaction.response.is_done():  # acknowledged while the database was slow
            await interaction.edit_original_response(content=text, view=self)
        else:
            await interaction.response.edit_message(content=text, view=self)

    @discord.ui.button(label="Reset to the defaults", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        if not await self.refuse_unless_owner(interaction, "confirm"):
            return
        try:
            await within_deadline(
                interaction,
                self.cog.server_settings.update(
                    self.guild_id, ServerSettings.without_own_values, user_id=interaction.user.id
                ),
                component=True,
            )
        except StoreError as exc:
            log.warning("settings reset of guild %s not saved: %s", self.guild_id, exc)
            await self._finish(interaction, "Not saved: the database did not answer. Try again in a moment.")
            return
        log.info("settings of guild %s reset by user %s", self.guild_id, interaction.user.id)
        await self._finish(interaction, "Done: this server uses the default settings again.")

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        if not await self.refuse_unless_owner(interaction, "cancel"):
            return
        await self._finish(interaction, "Nothing was changed.")


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class SettingsCog(
    commands.GroupCog, group_name="settings", group_description="Set newsdesk up for this server"
):
    qa_channel = app_commands.Group(
        name="qa-channel", description="Channels where every message is a question"
    )
    admin_role = app_commands.Group(
        name="admin-role", description="Roles whose members may run newsdesk's admin commands here"
    )

    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.server_settings = bot.server_settings

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return refuse_unless_admin(cast("discord.Interaction[NewsBot]", interaction))

    # -- helpers -------------------------------------------------------------------------------
    def _defaults_here(self, guild: discord.Guild) -> ServerSettings:
        """The environment's lists, narrowed to this server: where a server's own list starts from."""
        defaults = self.bot.settings
        return ServerSettings(
            guild.id,
            qa_channels=frozenset(c for c in defaults.qa_channels if guild.get_channel_or_thread(c)),
            admin_roles=frozenset(r for r in defaults.admin_roles if guild.get_role(r)),
        )

    def _list_here(self, guild: discord.Guild, name: str) -> frozenset[int]:
        """This server's Q&A channels or admin roles: its own list, else the environment's in this server."""
        own = self.server_settings.own(guild.id)
        value = getattr(own, name) if own is not None else None
        return getattr(self._defaults_here(guild), name) if value is None else value

    async def _change_list(
        self, interaction: discord.Interaction, guild: discord.Guild, name: str, *, add=(), remove=()
    ) -> None:
        user_id = interaction.user.id
        start = getattr(self._defaults_here(guild), name)

        def change(row: ServerSettings) -> ServerSettings:
            current = getattr(row, name)
            current = start if current is None else current
            return replace(row, **{name: (current | frozenset(add)) - frozenset(remove)})

        await within_deadline(interaction, self.server_settings.update(guild.id, change, user_id=user_id))
        log.info("guild %s: %s %s by user %s", guild.id, name, f"+{add}" if add else f"-{remove}", user_id)

    @staticmethod
    async def _reply(interaction: discord.Interaction, text: str) -> None:
        none = discord.AllowedMentions.none()
        if interaction.response.is_done():  # acknowledged while the database was slow
            await interaction.followup.send(text[:2000], ephemeral=True, allowed_mentions=none)
        else:
            await interaction.response.send_message(text[:2000], ephemeral=True, allowed_mentions=none)

    def _intent_note(self) -> str:
        return "" if self.bot.intents.message_content else "\n\n" + MESSAGE_CONTENT_OFF

    # -- /settings show ------------------------------------------------------------------------
    @app_commands.command(name="show", description="This server's settings, each set here or a default")
    async def show(self, interaction: discord.Interaction) -> None:
        guild = interaction.guild
        assert guild is not None  # guild_only
        server = self.server_settings.effective(guild.id)
        server = replace(
            server,
            qa_channels=self._list_here(guild, "qa_channels"),
            admin_roles=self._list_here(guild, "admin_roles"),
        )
        who: dict[str, tuple[str, str | None]] = {}
        if server.own is not None:
            table = self.bot.service.server_settings
            for change in reversed(await asyncio.to_thread(table.changes, guild.id, 200)):
                who[change.setting] = (change.changed_at, str(change.user_id) if change.user_id else None)
        embed = discord.Embed(title=f"newsdesk settings for {escape(clip(guild.name, 200))}", colour=0x2B6CB0)
        for name in SETTING_NAMES:
            value = f"{value_text(server, name)}\n*{source_text(server, name, who)}*"
            embed.add_field(name=LABELS[name], value=value[:1024], inline=False)
        notes = ["Members with Manage Server are admins too."]
        if server.qa_channels and not self.bot.intents.message_content:
            notes.append(MESSAGE_CONTENT_OFF)
        embed.add_field(name="Notes", value="\n".join(notes)[:1024], inline=False)
        embed.set_footer(text="Change them with /settings …; /settings reset goes back to the defaults.")
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    # -- /settings qa-channel ------------------------------------------------------------------
    @qa_channel.command(name="add", description="Answer every message posted in a channel")
    @app_commands.describe(channel="A text channel where members' messages are questions")
    async def qa_channel_add(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        guild = interaction.guild
        assert guild is not None
        if channel.guild.id != guild.id:
            await self._reply(interaction, "Pick a channel of this server.")
            return
        if channel.id in self.server_settings.effective(guild.id).qa_channels:
            await self._reply(
                interaction, f"{channel.mention} is already a Q&A channel." + self._intent_note()
            )
            return
        missing = missing_permissions(channel)
        if missing:
            await self._reply(
                interaction,
                f"I can't answer in {channel.mention}: I need {', '.join(missing)} there. Give newsdesk these "
                "permissions in the channel's settings (Edit Channel > Permissions), then try again.",
            )
            return
        if len(self._list_here(guild, "qa_channels")) >= MAX_LISTED:
            await self._reply(
                interaction, f"A server can have up to {MAX_LISTED} Q&A channels; remove one first."
            )
            return
        await self._change_list(interaction, guild, "qa_channels", add={channel.id})
        await self._reply(
            interaction,
            f"{channel.mention} is now a Q&A channel: I answer every message posted there, as a reply."
            + self._intent_note(),
        )

    @qa_channel.command(name="remove", description="Stop answering every message in a channel")
    @app_commands.describe(channel="A Q&A channel of this server")
    async def qa_channel_remove(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        guild = interaction.guild
        assert guild is not None
        if channel.id not in self.server_settings.effective(guild.id).qa_channels:
            await self._reply(interaction, f"{channel.mention} is not a Q&A channel here; nothing changed.")
            return
        await self._change_list(interaction, guild, "qa_channels", remove={channel.id})
        await self._reply(
            interaction,
            f"{channel.mention} is no longer a Q&A channel. Members can still mention me or use /ask there.",
        )

    # -- /settings admin-role ------------------------------------------------------------------
    async def _refuse_unless_may_change_admins(self, interaction: discord.Interaction) -> bool:
        if may_change_admins(cast("discord.Interaction[NewsBot]", interaction)):
            return False
        log.warning(
            "refused /%s for user %s in guild %s: needs Manage Server",
            interaction.command.qualified_name if interaction.command else "settings",
            interaction.user.id,
            interaction.guild_id,
        )
        await self._reply(
            interaction,
            "Only members with the Manage Server permission can change who is an admin here.",
        )
        return True

    @admin_role.command(name="add", description="Let a role's members run newsdesk's admin commands here")
    @app_commands.describe(role="Members of this role may run /reload, /feedback and /settings")
    async def admin_role_add(self, interaction: discord.Interaction, role: discord.Role) -> None:
        guild = interaction.guild
        assert guild is not None
        if await self._refuse_unless_may_change_admins(interaction):
            return
        if role.guild.id != guild.id:
            await self._reply(interaction, "Pick a role of this server.")
            return
        if role.is_default():
            await self._reply(
                interaction, "@everyone can't be an admin role: pick a role given to some members."
            )
            return
        if role.id in self.server_settings.effective(guild.id).admin_roles:
            await self._reply(interaction, f"{role.mention} is already an admin role.")
            return
        if len(self._list_here(guild, "admin_roles")) >= MAX_LISTED:
            await self._reply(
                interaction, f"A server can have up to {MAX_LISTED} admin roles; remove one first."
            )
            return
        await self._change_list(interaction, guild, "admin_roles", add={role.id})
        await self._reply(
            interaction, f"Members of {role.mention} can now run newsdesk's admin commands here."
        )

    @admin_role.command(name="remove", description="Stop a role's members running newsdesk's admin commands")
    @app_commands.describe(role="An admin role of this server")
    async def admin_role_remove(self, interaction: discord.Interaction, role: discord.Role) -> None:
        guild = interaction.guild
        assert guild is not None
        if await self._refuse_unless_may_change_admins(interaction):
            return
        if role.id not in self.server_settings.effective(guild.id).admin_roles:
            await self._reply(interaction, f"{role.mention} is not an admin role here; nothing changed.")
            return
        await self._change_list(interaction, guild, "admin_roles", remove={role.id})
        await self._reply(
            interaction,
            f"{role.mention} is no longer an admin role. Members with Manage Server are always admins.",
        )

    # -- /settings results and cooldown --------------------------------------------------------
    async def _set_number(
        self, interaction: discord.Interaction, name: str, value: int | None, low: int, high: int
    ) -> bool:
        if value is not None and not low <= value <= high:  # Discord checks too; a client may not
            await self._reply(interaction, f"{LABELS[name]} must be from {low} to {high}; got {value}.")
            return False
        guild_id = interaction.guild_id
        assert guild_id is not None
        await within_deadline(
            interaction,
            self.server_settings.update(
                guild_id,
                lambda row: (
                    replace(row, results=value) if name == "results" else replace(row, cooldown=value)
                ),
                user_id=interaction.user.id,
            ),
        )
        log.info("guild %s: %s = %s by user %s", guild_id, name, value, interaction.user.id)
        return True

    @app_commands.command(name="results", description="How many answers each reply shows in this server")
    @app_commands.describe(count="1 to 10; leave it out to use the default again")
    async def results(
        self, interaction: discord.Interaction, count: app_commands.Range[int, 1, 10] | None = None
    ):
        if await self._set_number(interaction, "results", count, 1, 10):
            server = self.server_settings.effective(interaction.guild_id)
            how = "" if count is not None else " (the default)"
            plural = "" if server.results == 1 else "s"
            await self._reply(interaction, f"Replies here now show {server.results} answer{plural}{how}.")

    @app_commands.command(name="cooldown", description="Seconds a member waits between questions here")
    @app_commands.describe(seconds="0 (no wait) to 3600; leave it out to use the default again")
    async def cooldown(
        self, interaction: discord.Interaction, seconds: app_commands.Range[int, 0, 3600] | None = None
    ):
        if await self._set_number(interaction, "cooldown", seconds, 0, 3600):
            server = self.server_settings.effective(interaction.guild_id)
            how = "" if seconds is not None else " (the default)"
            text = (
                f"Members here can now ask once every {server.cooldown} s{how}."
                if server.cooldown
                else f"Members here can now ask as often as they like{how}."
            )
            await self._reply(interaction, text)

    # -- /settings reset -----------------------------------------------------------------------
    @app_commands.command(name="reset", description="Go back to the default settings (asks first)")
    async def reset(self, interaction: discord.Interaction) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None
        server = self.server_settings.effective(guild_id)
        if server.own is None or server.own.is_empty():
            await self._reply(interaction, "This server already uses the default settings.")
            return
        if server.is_set_here("admin_roles") and await self._refuse_unless_may_change_admins(interaction):
            return
        view = ConfirmReset(self, interaction.user.id, guild_id)
        names = ", ".join(LABELS[name].lower() for name in SETTING_NAMES if server.is_set_here(name))
        await interaction.response.send_message(
            f"Reset this server's own settings ({names}) to the defaults?", view=view, ephemeral=True
        )
        view.message = await interaction.original_response()


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(SettingsCog(bot))

"""Who is an admin: Manage Server in that guild, a user in NEWSDESK_ADMIN_USERS, or a role in
NEWSDESK_ADMIN_ROLES. Checked at run time on every admin command, because server owners can
override the default command permissions that only hide commands."""

from __future__ import annotations

import discord
from discord import app_commands

from .client import NewsBot, NotAdmin


def member_role_ids(user: discord.abc.User) -> set[int]:
    ids = {role.id for role in getattr(user, "roles", ())}
    ids.update(getattr(user, "_roles", ()))  # role ids from the payload, even when the guild is not cached
    return ids


def is_admin(interaction: discord.Interaction[NewsBot]) -> bool:
    settings = interaction.client.settings
    if interaction.user.id in settings.admin_users:
        return True
    if interaction.guild_id is None:
        return False
    if interaction.permissions.manage_guild:
        return True
    return bool(member_role_ids(interaction.user) & settings.admin_roles)


def admin_only():
    async def predicate(interaction: discord.Interaction[NewsBot]) -> bool:
        if is_admin(interaction):
            return True
        name = interaction.command.name if interaction.command else "this command"
        raise NotAdmin(
            f"Only admins can use /{name}: you need the Manage Server permission, "
            "or an admin role or user listed in newsdesk's settings."
        )

    return app_commands.check(predicate)

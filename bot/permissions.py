"""Who is an admin: Manage Server in that guild, a user in NEWSDESK_ADMIN_USERS, or a member of one of the
server's admin roles (its own, set with /settings admin-role, else NEWSDESK_ADMIN_ROLES). Checked at run
time on every admin command, because server owners can override the default command permissions that
only hide commands."""

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
    server = interaction.client.server_settings.effective(interaction.guild_id)
    return bool(member_role_ids(interaction.user) & server.admin_roles)


def may_change_admins(interaction: discord.Interaction[NewsBot]) -> bool:
    """Who may change who is an admin: Manage Server or NEWSDESK_ADMIN_USERS, never an admin role alone
    (a role given admin rights cannot hand them on, or take them from the others)."""
    settings = interaction.client.settings
    if interaction.user.id in settings.admin_users:
        return True
    return interaction.guild_id is not None and interaction.permissions.manage_guild


def refuse_unless_admin(interaction: discord.Interaction[NewsBot]) -> bool:
    """True for admins; raises NotAdmin (a private refusal, logged by the tree) for everyone else."""
    if is_admin(interaction):
        return True
    name = interaction.command.qualified_name if interaction.command else "this command"
    raise NotAdmin(
        f"Only admins can use /{name}: you need the Manage Server permission, "
        "or an admin role or user listed in newsdesk's settings."
    )


def admin_only():
    async def predicate(interaction: discord.Interaction[NewsBot]) -> bool:
        return refuse_unless_admin(interaction)

    return app_commands.check(predicate)

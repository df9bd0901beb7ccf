"""A base for our button views: one owner may page, and the buttons switch off when the view times out."""

from __future__ import annotations

import logging

import discord

log = logging.getLogger(__name__)

VIEW_TIMEOUT = 15 * 60


class OwnedView(discord.ui.View):
    def __init__(self, owner_id: int, *, timeout: float = VIEW_TIMEOUT) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self.message: discord.Message | discord.InteractionMessage | discord.WebhookMessage | None = None

    async def refuse_unless_owner(self, interaction: discord.Interaction, what: str = "page through") -> bool:
        """True when the clicker is the owner; otherwise tell them (privately) and return False."""
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            f"Only the person who asked can {what} these results. Ask your own question with /ask.",
            ephemeral=True,
        )
        return False

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button) and item.style != discord.ButtonStyle.link:
                item.disabled = True
        if self.message is not None:
            try:
                await self.message.edit(view=self)
            except discord.HTTPException:
                log.debug("could not disable the buttons of a timed-out view")

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item
    ) -> None:
        log.error("button %s failed", getattr(item, "custom_id", item), exc_info=error)
        await tell_button_failed(interaction)


async def tell_button_failed(interaction: discord.Interaction) -> None:
    """Tell the member who clicked, privately, that the button failed (the caller logs why)."""
    text = "That button didn't work; it has been logged. Please ask again."
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.debug("could not report a failed button")

"""The buttons under an answer, without a View object per message.

Each button's custom id carries what a click needs: the action, the asker and the page's offset
(``nd:answer:more:<asker id>:<offset>``). One ``DynamicItem`` class, registered once, handles every click on
every answer, so an answer costs no per-message state, no timeout task, and its buttons keep working after the
bot restarts. The question is the one remembered for that message, or after a restart the answer's heading.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from typing import Any

import discord

from retrieval import Answer, StoreError

from .client import respond, within_deadline
from .render import render_answer
from .views import tell_button_failed

log = logging.getLogger(__name__)

PREFIX = "nd:answer"
ACTIONS = ("back", "more", "up", "down", "share")
VOTES_REMEMBERED = 10_000
VOTE_NOT_KEPT = (
    "Sorry, I couldn't record your vote just now: the database did not answer. Please try again in a minute."
)
_UNESCAPE = re.compile(r"\\(.)")


# Each button's label and emoji; the emoji made once, not parsed from its text for every answer.
_LOOKS: dict[str, dict[str, Any]] = {
    "back": {"label": "Back", "emoji": discord.PartialEmoji(name="◀")},
    "more": {"label": "More", "emoji": discord.PartialEmoji(name="▶")},
    "up": {"emoji": discord.PartialEmoji(name="👍")},
    "down": {"emoji": discord.PartialEmoji(name="👎")},
    "share": {"label": "Share"},
}


def custom_id(action: str, asker_id: int, offset: int) -> str:
    return f"{PREFIX}:{action}:{asker_id}:{offset}"


def answer_buttons(answer: Answer, *, asker_id: int, private: bool, shared: bool = False) -> discord.ui.View:
    """The button row under ``answer`` (paging, feedback and, when private, sharing)."""
    view = discord.ui.View(timeout=None)
    offset = answer.offset
    off = answer.no_match
    specs: list[tuple[str, dict[str, Any], bool]] = [
        ("back", _LOOKS["back"], off or offset == 0),
        ("more", _LOOKS["more"], off or not answer.has_more),
        ("up", _LOOKS["up"], off),
        ("down", _LOOKS["down"], off),
    ]
    if private:
        specs.append(("share", _LOOKS["share"], off or shared))
    for action, look, disabled in specs:
        style = discord.ButtonStyle.primary if action == "share" else discord.ButtonStyle.secondary
        button: discord.ui.Button = discord.ui.Button(
            style=style, custom_id=custom_id(action, asker_id, offset), disabled=disabled, **look
        )
        view.add_item(AnswerButton(button))
    return view


def buttons_of(message: discord.Message, *, disable: str) -> discord.ui.View:
    """The message's answer buttons as they are, with the one whose custom id is ``disable`` switched off."""
    view = discord.ui.View(timeout=None)
    for row in message.components:
        for item in getattr(row, "children", ()):
            cid = getattr(item, "custom_id", None)
            if not cid or not AnswerButton.__discord_ui_compiled_template__.fullmatch(cid):
                continue
            button: discord.ui.Button = discord.ui.Button(
                style=item.style, label=item.label, emoji=item.emoji, custom_id=cid, disabled=item.disabled
            )
            button.disabled = item.disabled or cid == disable
            view.add_item(AnswerButton(button))
    return view


def remember_vote(votes: OrderedDict, message_id: int, user_id: int) -> bool:
    """False when this member already rated this answer; the oldest votes are forgotten first."""
    key = (message_id, user_id)
    if key in votes:
        return False
    votes[key] = True
    while len(votes) > VOTES_REMEMBERED:
        votes.popitem(last=False)
    return True


def forget_vote(votes: OrderedDict, message_id: int, user_id: int) -> None:
    """Undo ``remember_vote`` for a vote that could not be stored."""
    votes.pop((message_id, user_id), None)


def question_heading(message: discord.Message | None) -> str | None:
    """The question as shown in the answer's heading (our escaping undone)."""
    if message is None or not message.embeds or not message.embeds[0].title:
        return None
    title = message.embeds[0].title.replace("\u2060", "")
    return _UNESCAPE.sub(r"\1", title).rstrip("…").strip() or None


_FOLLOWING_UP = re.compile(r"^(?P<question>.*) \(following up on: (?P<earlier>.*)\)$", re.DOTALL)


def conversation_from_heading(heading: str | None) -> str | None:
    """The conversation an answer's heading shows: "question (following up on: earlier)" -> two lines."""
    if not heading:
        return None
    match = _FOLLOWING_UP.match(heading)
    return f"{match['earlier']}\n{match['question']}" if match else heading


def _share_used(message: discord.Message | None) -> bool:
    if message is None:
        return False
    for row in message.components:
        for item in getattr(row, "children", ()):
            if (getattr(item, "custom_id", None) or "").startswith(f"{PREFIX}:share:"):
                return bool(getattr(item, "disabled", False))
    return False


def _page_size(interaction: discord.Interaction) -> int:
    """Answers per page where the button was clicked: the server's own setting, else the default."""
    bot: Any = interaction.client
    return bot.server_settings.effective(interaction.guild_id).results


class AnswerButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"nd:answer:(?P<action>back|more|up|down|share):(?P<asker>[0-9]{1,20}):(?P<offset>[0-9]{1,6})",
):
    def __init__(self, button: discord.ui.Button, *, action: str = "", asker_id: int = 0, offset: int = 0):
        super().__init__(button)
        self.action = action
        self.asker_id = asker_id
        self.offset = offset

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item, match: re.Match[str], /
    ) -> AnswerButton:
        assert isinstance(item, discord.ui.Button)
        return cls(item, action=match["action"], asker_id=int(match["asker"]), offset=int(match["offset"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            if self.action in ("up", "down"):
                await self._vote(interaction, +1 if self.action == "up" else -1)
            elif not await self._is_asker(interaction):
                return
            elif self.action == "share":
                await self._share(interaction)
            else:
                page_size = _page_size(interaction)
                step = page_size if self.action == "more" else -page_size
                await self._page(interaction, max(self.offset + step, 0))
        except Exception:
            log.exception("answer button %s failed", self.custom_id)
            await tell_button_failed(interaction)

    async def _is_asker(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.asker_id:
            return True
        what = "share" if self.action == "share" else "page through"
        await interaction.response.send_message(
            f"Only the person who asked can {what} these results. Ask your own question with /ask.",
            ephemeral=True,
        )
        return False

    @staticmethod
    def _question(interaction: discord.Interaction) -> str | None:
        bot: Any = interaction.client
        message = interaction.message
        remembered = bot.answers.question_for(message.id) if message is not None else None
        return remembered or conversation_from_heading(question_heading(message))

    async def _search(self, interaction: discord.Interaction, question: str, offset: int) -> Answer:
        cog: Any = interaction.client.get_cog("AskCog")  # type: ignore[attr-defined]
        return await cog.search(question, offset=offset, k=_page_size(interaction))

    async def _page(self, interaction: discord.Interaction, offset: int) -> None:
        question = self._question(interaction)
        message = interaction.message
        if question is None or message is None:
            await interaction.response.send_message(
                "I can't page this answer any more. Ask again with /ask.", ephemeral=True
            )
            return
        answer = await self._search(interaction, question, offset)
        if not answer.results:  # the corpus changed under the answer: stay on the page shown
            await interaction.response.defer()
            return
        reply = render_answer(answer, page_size=_page_size(interaction))
        if message.embeds and message.embeds[0].title:
            reply.embeds[0].title = message.embeds[0].title  # keep the heading the asker saw
        private = bool(message.flags.ephemeral)
        view = answer_buttons(
            answer, asker_id=self.asker_id, private=private, shared=private and _share_used(message)
        )
        await interaction.response.edit_message(embeds=reply.embeds, view=view)

    async def _vote(self, interaction: discord.Interaction, vote: int) -> None:
        bot: Any = interaction.client
        message = interaction.message
        if not remember_vote(bot.get_cog("AskCog").votes, message.id if message else 0, interaction.user.id):
            await interaction.response.send_message("You already rated this answer. Thanks!", ephemeral=True)
            return
        question = self._question(interaction) or ""

        async def record() -> str:
            answer = await self._search(interaction, question, self.offset) if question else None
            try:
                await asyncio.to_thread(
                    bot.service.add_feedback,
                    guild_id=str(interaction.guild_id) if interaction.guild_id else None,
                    channel_id=str(interaction.channel_id) if interaction.channel_id else None,
                    user_id=str(interaction.user.id),
                    question=question,
                    article_ids=[r.article_id for r in answer.results] if answer else [],
                    vote=vote,
                )
            except StoreError as exc:
                # Never thank for a vote that was not kept: say so, and let the member vote again later.
                log.warning("could not store feedback: %s", exc)
                forget_vote(bot.get_cog("AskCog").votes, message.id if message else 0, interaction.user.id)
                return VOTE_NOT_KEPT
            return (
                "Thanks, glad it helped."
                if vote > 0
                else "Thanks, noted: the admins will see what went wrong."
            )

        # Thanked only once the vote is stored; "thinking" first when the database is slow to say so.
        await respond(interaction, content=await within_deadline(interaction, record()), ephemeral=True)

    async def _share(self, interaction: discord.Interaction) -> None:
        message = interaction.message
        if message is None or not message.embeds:
            await interaction.response.send_message("There is nothing to share here.", ephemeral=True)
            return
        await interaction.response.edit_message(view=buttons_of(message, disable=self.custom_id))
        name = discord.utils.escape_markdown(interaction.user.display_name)[:80]
        await interaction.followup.send(
            f"Shared by {discord.utils.escape_mentions(name)}",
            embeds=message.embeds,
            allowed_mentions=discord.AllowedMentions.none(),
        )

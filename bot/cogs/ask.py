"""Questions: ``/ask``, mentions, Q&A channels and follow-up replies."""

from __future__ import annotations

import asyncio
import logging
import re

import discord
from discord import app_commands
from discord.ext import commands

from retrieval import Answer, EmptyArchive, QuestionError, StoreError, clean_question

from ..client import NewsBot, sentence
from ..cooldown import Cooldown
from ..render import Reply, render_answer
from ..views import OwnedView

log = logging.getLogger(__name__)

HELP_TEXT = (
    "Ask me about the news archive, for example `who surrounded Manbij in 2016?` "
    "Use /ask, mention me with your question, or reply to one of my answers to follow up."
)
_MENTION = re.compile(r"<@!?\d+>")
FOLLOW_UP_CONTEXT_QUESTIONS = 3  # earlier questions a follow-up is searched with


class AnswerView(OwnedView):
    """Paging, feedback and (for private answers) sharing, under one answer."""

    def __init__(
        self,
        cog: AskCog,
        *,
        asker_id: int,
        question: str,
        answer: Answer,
        private: bool,
        guild_id: int | None,
        channel_id: int | None,
    ) -> None:
        super().__init__(asker_id)
        self.cog = cog
        self.question = question
        self.answer = answer
        self.private = private
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.voted: set[int] = set()
        if not private:
            self.remove_item(self.share)
        self._update_buttons()

    @property
    def page_size(self) -> int:
        return self.cog.bot.settings.results

    def _update_buttons(self) -> None:
        self.back.disabled = self.answer.offset == 0
        self.more.disabled = not self.answer.has_more
        if self.answer.no_match:
            for item in (self.back, self.more, self.helpful, self.unhelpful, self.share):
                item.disabled = True

    async def _page(self, interaction: discord.Interaction, offset: int) -> None:
        if not await self.refuse_unless_owner(interaction):
            return
        answer = await self.cog.search(self.question, offset=max(offset, 0))
        answer.question = self.answer.question  # keep the heading the asker saw
        if answer.results:
            self.answer = answer
        self._update_buttons()
        reply = render_answer(self.answer, page_size=self.page_size)
        await interaction.response.edit_message(embeds=reply.embeds, view=self)

    @discord.ui.button(label="Back", emoji="◀", style=discord.ButtonStyle.secondary)
    async def back(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._page(interaction, self.answer.offset - self.page_size)

    @discord.ui.button(label="More", emoji="▶", style=discord.ButtonStyle.secondary)
    async def more(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._page(interaction, self.answer.offset + self.page_size)

    async def _vote(self, interaction: discord.Interaction, vote: int) -> None:
        if interaction.user.id in self.voted:
            await interaction.response.send_message("You already rated this answer. Thanks!", ephemeral=True)
            return
        self.voted.add(interaction.user.id)
        try:
            await asyncio.to_thread(
                self.cog.bot.service.add_feedback,
                guild_id=str(self.guild_id) if self.guild_id else None,
                channel_id=str(self.channel_id) if self.channel_id else None,
                user_id=str(interaction.user.id),
                question=self.question,
                article_ids=[r.article_id for r in self.answer.results],
                vote=vote,
            )
        except StoreError as exc:
            log.warning("could not store feedback: %s", exc)
        text = (
            "Thanks, glad it helped." if vote > 0 else "Thanks, noted: the admins will see what went wrong."
        )
        await interaction.response.send_message(text, ephemeral=True)

    @discord.ui.button(emoji="👍", style=discord.ButtonStyle.secondary)
    async def helpful(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._vote(interaction, +1)

    @discord.ui.button(emoji="👎", style=discord.ButtonStyle.secondary)
    async def unhelpful(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._vote(interaction, -1)

    @discord.ui.button(label="Share", style=discord.ButtonStyle.primary)
    async def share(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        if not await self.refuse_unless_owner(interaction, "share"):
            return
        reply = render_answer(self.answer, page_size=self.page_size)
        name = discord.utils.escape_markdown(interaction.user.display_name)[:80]
        await interaction.response.send_message(
            f"Shared by {discord.utils.escape_mentions(name)}",
            embeds=reply.embeds,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        button.disabled = True
        if self.message is not None:
            await self.message.edit(view=self)


class AskCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.cooldown = Cooldown(bot.settings.cooldown)

    async def search(self, conversation: str, *, offset: int = 0) -> Answer:
        """Answer the last line of ``conversation``; earlier lines are the questions it follows up on.

        The retriever runs in a worker thread, so the event loop (and the heartbeat) never waits."""
        *context, question = conversation.split("\n")
        return await self.bot.run_search(
            self.bot.service.search, question, k=self.bot.settings.results, offset=offset, context=context
        )

    def _check_question(self, question: str) -> str:
        return clean_question(question, max_chars=self.bot.settings.max_question)

    # -- /ask ----------------------------------------------------------------------------------
    @app_commands.command(name="ask", description="Ask the news archive a question")
    @app_commands.describe(
        question="What you want to know, e.g. who surrounded Manbij in 2016?",
        private="Only you see the answer (you can share it afterwards)",
    )
    async def ask(self, interaction: discord.Interaction, question: str, private: bool = False) -> None:
        try:
            question = self._check_question(question)
        except QuestionError as exc:
            await interaction.response.send_message(f"{sentence(str(exc))}\n{HELP_TEXT}", ephemeral=True)
            return
        wait = self.cooldown.retry_after(interaction.user.id)
        if wait:
            await interaction.response.send_message(
                f"You're asking quickly: try again in {wait:.0f} s.", ephemeral=True
            )
            return
        await interaction.response.defer(ephemeral=private, thinking=True)
        answer = await self.search(question)
        view = AnswerView(
            self,
            asker_id=interaction.user.id,
            question=question,
            answer=answer,
            private=private,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
        )
        reply = render_answer(answer, page_size=self.bot.settings.results)
        message = await interaction.edit_original_response(
            embeds=reply.embeds, view=view, allowed_mentions=discord.AllowedMentions.none()
        )
        view.message = message
        self.bot.answers.remember(message.id, question)

    # -- messages ------------------------------------------------------------------------------
    def _earlier_question(self, message: discord.Message) -> str | None:
        if message.reference and message.reference.message_id:
            earlier = self.bot.answers.question_for(message.reference.message_id)
            if earlier:
                return earlier
        # A thread started from one of our answers has that answer's id: every message in it follows up.
        return self.bot.answers.question_for(message.channel.id)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.webhook_id is not None or self.bot.user is None:
            return
        me = self.bot.user
        mentioned = any(user.id == me.id for user in message.mentions)
        in_qa_channel = message.channel.id in self.bot.settings.qa_channels
        earlier = self._earlier_question(message)
        if not (mentioned or in_qa_channel or earlier):
            return
        text = _MENTION.sub(" ", message.content or "")
        try:
            text = self._check_question(text)
        except QuestionError as exc:
            # In a Q&A channel a message with no text (a picture, a sticker) is not a question to refuse.
            if mentioned or (message.content or "").strip():
                await self._reply(message, Reply(content=f"{sentence(str(exc))}\n{HELP_TEXT}"))
            return
        wait = self.cooldown.retry_after(message.author.id)
        if wait:
            await self._reply(
                message,
                Reply(content=f"You're asking quickly: try again in {wait:.0f} s."),
                delete_after=min(wait, 30),
            )
            return
        question = text
        if earlier:  # questions are one line each, so the conversation is one per line
            question = "\n".join([*earlier.split("\n")[-FOLLOW_UP_CONTEXT_QUESTIONS:], text])
        # No typing indicator: answers take milliseconds, and it would double the REST calls under load.
        try:
            answer = await self.search(question)
        except EmptyArchive as exc:
            await self._reply(message, Reply(content=sentence(str(exc))))
            return
        if earlier:
            answer.question = f"{text} (following up on: {earlier.split(chr(10))[-1][:80]})"
        view = AnswerView(
            self,
            asker_id=message.author.id,
            question=question,
            answer=answer,
            private=False,
            guild_id=message.guild.id if message.guild else None,
            channel_id=message.channel.id,
        )
        sent = await self._reply(
            message, render_answer(answer, page_size=self.bot.settings.results), view=view
        )
        if sent is not None:
            view.message = sent
            self.bot.answers.remember(sent.id, question)
            if earlier and self.bot.answers.question_for(message.channel.id):
                self.bot.answers.remember(message.channel.id, question)  # the thread follows the conversation

    async def _reply(
        self,
        message: discord.Message,
        reply: Reply,
        *,
        view: discord.ui.View | None = None,
        delete_after: float | None = None,
    ) -> discord.Message | None:
        kwargs: dict = {
            "embeds": reply.embeds,
            "mention_author": False,
            "allowed_mentions": discord.AllowedMentions.none(),
            "delete_after": delete_after,
        }
        if reply.content:
            kwargs["content"] = reply.content
        if view is not None:
            kwargs["view"] = view
        try:
            return await message.reply(**kwargs)
        except discord.HTTPException as exc:
            log.warning("could not reply in channel %s: %s", message.channel.id, exc)
            return None


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(AskCog(bot))

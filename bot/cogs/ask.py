"""Questions: ``/ask``, mentions, Q&A channels and follow-up replies."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict

import discord
from discord import app_commands
from discord.ext import commands

from retrieval import Answer, EmptyArchive, QuestionError, clean_question

from ..answer_buttons import AnswerButton, answer_buttons, conversation_from_heading, question_heading
from ..client import NewsBot, respond, sentence, within_deadline
from ..cooldown import Cooldown
from ..render import Reply, render_answer

log = logging.getLogger(__name__)

HELP_TEXT = (
    "Ask me about the news archive, for example `who surrounded Manbij in 2016?` "
    "Use /ask, mention me with your question, or reply to one of my answers to follow up."
)
_MENTION = re.compile(r"<@!?\d+>")
FOLLOW_UP_CONTEXT_QUESTIONS = 3  # earlier questions a follow-up is searched with


class AskCog(commands.Cog):
    def __init__(self, bot: NewsBot) -> None:
        self.bot = bot
        self.cooldown = Cooldown(bot.settings.cooldown)  # shared by every server without its own cooldown
        self._server_cooldowns: dict[int, Cooldown] = {}
        self.votes: OrderedDict[tuple[int, int], bool] = OrderedDict()  # (answer, member) already rated

    async def cog_load(self) -> None:
        # One handler for the buttons of every answer, including those sent before a restart.
        self.bot.add_dynamic_items(AnswerButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(AnswerButton)

    async def search(self, conversation: str, *, offset: int = 0, k: int | None = None) -> Answer:
        """Answer the last line of ``conversation``; earlier lines are the questions it follows up on.

        The retriever runs in a search process or a worker thread, so the event loop (and the heartbeat)
        never waits."""
        *context, question = conversation.split("\n")
        return await self.bot.answer(
            question, k=k or self.bot.settings.results, offset=offset, context=context
        )

    # -- per-server settings -------------------------------------------------------------------
    def results_for(self, guild_id: int | None) -> int:
        return self.bot.server_settings.effective(guild_id).results

    def cooldown_for(self, guild_id: int | None) -> Cooldown:
        """A server with its own cooldown counts its members' questions on its own."""
        server = self.bot.server_settings.effective(guild_id)
        if guild_id is None or not server.is_set_here("cooldown"):
            return self.cooldown
        bucket = self._server_cooldowns.get(guild_id)
        if bucket is None:
            bucket = self._server_cooldowns[guild_id] = Cooldown(server.cooldown, max_members=2000)
        bucket.seconds = server.cooldown
        return bucket

    def is_qa_channel(self, channel: discord.abc.Messageable, guild_id: int | None) -> bool:
        return getattr(channel, "id", None) in self.bot.server_settings.effective(guild_id).qa_channels

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
        wait = self.cooldown_for(interaction.guild_id).retry_after(interaction.user.id)
        if wait:
            await interaction.response.send_message(
                f"You're asking quickly: try again in {wait:.0f} s.", ephemeral=True
            )
            return
        results = self.results_for(interaction.guild_id)
        answer = await within_deadline(interaction, self.search(question, k=results), ephemeral=private)
        reply = render_answer(answer, page_size=results)
        view = answer_buttons(answer, asker_id=interaction.user.id, private=private)
        message_id = await respond(interaction, embeds=reply.embeds, view=view, ephemeral=private)
        if message_id is not None:
            self.bot.answers.remember(message_id, question)

    # -- messages ------------------------------------------------------------------------------
    def _earlier_question(self, message: discord.Message) -> str | None:
        if message.reference and message.reference.message_id:
            earlier = self.bot.answers.question_for(message.reference.message_id)
            if earlier:
                return earlier
            # Not remembered (yet, or not since a restart): read it back from our answer's heading.
            answer = message.reference.resolved
            if not isinstance(answer, discord.Message):
                answer = discord.utils.get(self.bot.cached_messages, id=message.reference.message_id)
            if isinstance(answer, discord.Message) and self.bot.user and answer.author.id == self.bot.user.id:
                return conversation_from_heading(question_heading(answer))
        # A thread started from one of our answers has that answer's id: every message in it follows up.
        return self.bot.answers.question_for(message.channel.id)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.webhook_id is not None or self.bot.user is None:
            return
        me = self.bot.user
        mentioned = any(user.id == me.id for user in message.mentions)
        guild_id = message.guild.id if message.guild else None
        in_qa_channel = self.is_qa_channel(message.channel, guild_id)
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
        wait = self.cooldown_for(guild_id).retry_after(message.author.id)
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
        results = self.results_for(guild_id)
        try:
            answer = await self.search(question, k=results)
        except EmptyArchive as exc:
            await self._reply(message, Reply(content=sentence(str(exc))))
            return
        if earlier:
            answer.question = f"{text} (following up on: {earlier.split(chr(10))[-1][:80]})"
        view = answer_buttons(answer, asker_id=message.author.id, private=False)
        sent = await self._reply(message, render_answer(answer, page_size=results), view=view)
        if sent is not None:
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

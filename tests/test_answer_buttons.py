"""The answer buttons' state lives in their custom ids and in the answer itself: pure checks, no Discord."""

from __future__ import annotations

from collections import OrderedDict
from types import SimpleNamespace

import discord
import pytest

from bot import answer_buttons as ab
from bot.render import EMBED_TITLE_LIMIT, escaped_clip


def test_custom_ids_fit_discord_and_match_the_registered_template():
    biggest = ab.custom_id("share", 2**64 - 1, 999_999)
    assert len(biggest) <= 100
    match = ab.AnswerButton.__discord_ui_compiled_template__.fullmatch(ab.custom_id("more", 1234, 6))
    assert match and (match["action"], match["asker"], match["offset"]) == ("more", "1234", "6")
    assert not ab.AnswerButton.__discord_ui_compiled_template__.fullmatch("nd:answer:delete:1:0")


@pytest.mark.parametrize(
    "question",
    [
        "who surrounded Manbij in 2016?",
        "what did @everyone say about *bold* and `code` and [links](x) \\ backslashes?",
        "- a list? # a heading? 1. a number?",
        "<@123> ping ~~strike~~ ||spoiler|| _under_",
    ],
)
def test_the_question_comes_back_from_the_answer_heading(question):
    message = SimpleNamespace(embeds=[discord.Embed(title=escaped_clip(question, EMBED_TITLE_LIMIT))])
    assert ab.question_heading(message) == question


def test_a_member_rates_an_answer_once_and_old_votes_are_forgotten(monkeypatch):
    monkeypatch.setattr(ab, "VOTES_REMEMBERED", 3)
    votes: OrderedDict = OrderedDict()
    assert ab.remember_vote(votes, 1, 10) and not ab.remember_vote(votes, 1, 10)
    assert ab.remember_vote(votes, 1, 11) and ab.remember_vote(votes, 2, 10)
    assert ab.remember_vote(votes, 3, 10)  # the oldest (1, 10) is forgotten
    assert len(votes) == 3 and ab.remember_vote(votes, 1, 10)

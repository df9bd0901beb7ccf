"""The /headlines buttons keep their state in their custom ids and the listing's title: pure checks."""

from __future__ import annotations

import pytest

from bot import headline_buttons as hb
from bot.render import EMBED_TITLE_LIMIT, escaped_clip


def test_custom_ids_fit_discord_and_match_the_registered_template():
    biggest = hb.custom_id("older", 2**64 - 1, 25, 9_999_999)
    assert len(biggest) <= 100
    match = hb.HeadlineButton.__discord_ui_compiled_template__.fullmatch(hb.custom_id("newer", 42, 5, 10))
    assert match and (match["direction"], match["owner"], match["count"], match["offset"]) == (
        "newer",
        "42",
        "5",
        "10",
    )
    assert not hb.HeadlineButton.__discord_ui_compiled_template__.fullmatch("nd:headlines:delete:1:5:0")


@pytest.mark.parametrize(
    "wanted",
    [
        hb.HeadlineFilter(),
        hb.HeadlineFilter(query="council *budget* `2025`"),
        hb.HeadlineFilter(since="7d"),
        hb.HeadlineFilter(until="2016-06-30"),
        hb.HeadlineFilter(query="rail strike", since="2016-06-01", until="2w"),
    ],
)
def test_the_filter_comes_back_from_the_listing_title(wanted):
    assert hb.HeadlineFilter.from_title(escaped_clip(wanted.title, EMBED_TITLE_LIMIT)) == wanted


def test_a_title_we_did_not_write_gives_no_filter():
    assert hb.HeadlineFilter.from_title("Results for something else") is None
    assert hb.HeadlineFilter.from_title(None) is None


def test_old_listings_are_forgotten_first():
    filters = hb.HeadlineFilters(size=2)
    for message_id in (1, 2, 3):
        filters.remember(message_id, hb.HeadlineFilter(query=str(message_id)))
    assert filters.get(1) is None and filters.get(3) == hb.HeadlineFilter(query="3")


def test_a_title_with_cut_search_words_gives_no_filter():
    long = hb.HeadlineFilter(query="word " * 30)
    assert hb.HeadlineFilter.from_title(escaped_clip(long.title, EMBED_TITLE_LIMIT)) is None

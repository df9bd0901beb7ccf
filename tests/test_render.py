"""Rendering is pure: answers in, message parts out, never over a limit, never a ping or broken Markdown."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.render import (
    Reply,
    _escape_all,
    bold_spans,
    escape,
    render_answer,
    render_headlines,
    safe_url,
    within_limits,
)
from retrieval.excerpt import Excerpt
from retrieval.service import Answer, Headline, Result

HOSTILE = [
    "@everyone look",
    "@here",
    "<@123456789012345678>",
    "<@&123456789012345678>",
    "**bold** __u__ ~~s~~ ||spoiler||",
    "`code` ```block```",
    "[click](https://evil.example)",
    "> quote\n# heading",
    "-# subtext",
    "\u202eevil",
    "line\nbreak",
    "\\",
    "*",
    "<t:0:R>",
    "@\u200beveryone",
]


def result(title="Title", excerpt="An excerpt.", spans=(), url="https://news.example.org/a", n=0):
    return Result(
        article_id=f"a/{n}",
        title=title,
        published="2016-06-21T12:02:16",
        url=url,
        ordinal=n,
        passage=excerpt,
        excerpt=Excerpt(text=excerpt, spans=list(spans), start=0),
        score=1.0,
    )


def answer(results, question="who surrounded Manbij?", total=None):
    return Answer(
        question=question,
        took_ms=1.0,
        no_match=False,
        results=results,
        total=total if total is not None else len(results),
    )


def visible_text(markdown: str) -> str:
    """Roughly what Discord shows: escapes resolved."""
    return re.sub(r"\\(.)", r"\1", markdown)


def assert_safe(reply: Reply) -> None:
    assert within_limits(reply)
    texts = (
        [reply.content] + [e.title or "" for e in reply.embeds] + [e.description or "" for e in reply.embeds]
    )
    for text in texts:
        assert not re.search(r"(?<!\\)@(everyone|here)", text, re.I)
        assert not re.search(r"(?<!\\)<[@#]", text)
        assert "](javascript" not in text


def test_excerpt_is_quoted_with_matched_terms_bold_and_title_linked():
    reply = render_answer(
        answer(
            [result(excerpt="After fully encircling Manbij on June 8, the SDF pushed in.", spans=[(23, 29)])]
        ),
        page_size=3,
    )
    description = reply.embeds[0].description
    assert "**1. [Title](https://news.example.org/a)** · 2016-06-21" in description
    assert "> After fully encircling **Manbij** on June 8, the SDF pushed in." in description


def test_hostile_corpus_text_cannot_ping_link_or_format():
    for text in HOSTILE:
        reply = render_answer(answer([result(title=text, excerpt=text)], question=text), page_size=3)
        assert_safe(reply)
        description = reply.embeds[0].description
        assert "](https://evil" not in description
        assert "**bold**" not in description


def test_escaped_text_shows_the_original_characters():
    text = "**bold** [x](y) `c` 4.75% US-backed $40bn"
    assert visible_text(escape(text)) == text


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            list("ab .,-#+19\\*_~`|>[]()<@\n\t\u00a0\u200b\u2028\ufeff\x07é") + ["everyone", "here", "  "]
        )
    ).map("".join)
)
def test_text_left_as_it_is_is_text_the_full_escape_leaves_alone(text):
    assert escape(text) == _escape_all(text)


def test_no_match_is_said_plainly():
    reply = render_answer(Answer(question="zzz", took_ms=1, no_match=True), page_size=3)
    assert "No passage in the archive answers that well" in reply.embeds[0].description


def test_footer_counts_results_for_paging():
    reply = render_answer(
        Answer(
            question="q",
            took_ms=2,
            no_match=False,
            results=[result(n=3), result(n=4)],
            total=9,
            offset=3,
            has_more=True,
        ),
        page_size=2,
    )
    assert reply.embeds[0].footer.text.startswith("Results 4-5 · ▶ for more")
    last = render_answer(
        Answer(question="q", took_ms=2, no_match=False, results=[result(n=5)], offset=5), page_size=2
    )
    assert last.embeds[0].footer.text.startswith("Results 6-6 · ")
    assert "more" not in last.embeds[0].footer.text
    assert "**4. [Title]" in reply.embeds[0].description


def test_urls_that_could_break_a_link_are_encoded_or_dropped():
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("https://x.org/a b)c") == "https://x.org/a%20b%29c"
    assert safe_url("https://x.org/" + "a" * 600) is None


def test_long_everything_still_fits():
    big = "word " * 2000
    results = [result(title=big, excerpt=big, spans=[(0, 4), (5, 9)], n=i) for i in range(10)]
    reply = render_answer(answer(results, question=big), page_size=10)
    assert within_limits(reply)


def test_headlines_render_with_dates_and_links():
    rows = [
        Headline("a/1", "First @everyone", "2016-06-21", "https://x.org/1", None),
        Headline("a/2", "Second", None, None, None),
    ]
    reply = render_headlines(rows, offset=0)
    description = reply.embeds[0].description
    assert "2016-06-21 · [First \\@\u2060everyone](https://x.org/1)" in description
    assert "undated · Second" in description
    assert_safe(reply)


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=3000) | st.sampled_from(HOSTILE)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    question=texts,
    title=texts,
    excerpt=texts,
    url=st.none() | st.text(max_size=300),
    spans=st.lists(st.tuples(st.integers(-5, 3500), st.integers(-5, 3500)), max_size=8),
    n=st.integers(1, 10),
)
def test_any_text_renders_within_limits_and_without_pings(question, title, excerpt, url, spans, n):
    results = [result(title=title, excerpt=excerpt, spans=spans, url=url, n=i) for i in range(n)]
    assert_safe(render_answer(answer(results, question=question), page_size=n))


@settings(max_examples=300, deadline=None)
@given(text=texts, spans=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), max_size=6))
def test_bold_spans_keep_bold_markers_balanced(text, spans):
    rendered = bold_spans(text, spans)
    without_escapes = re.sub(r"\\.", "", rendered)
    assert without_escapes.count("*") % 4 == 0  # only our own "**" pairs remain

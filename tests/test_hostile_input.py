"""Whatever people type: a question either gets an answer or a QuestionError saying why, never anything
else, and nothing typed reaches the database as SQL or as a pattern.

``NEWSDESK_HYPOTHESIS_MAX=20000`` raises every property's example count for a longer run.
"""

from __future__ import annotations

import os
import shutil
import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from retrieval.analyze import Analyzer
from retrieval.errors import QuestionError
from retrieval.excerpt import ELLIPSIS, choose_excerpt
from retrieval.service import Answer, NewsService, clean_question
from tests.data import SAMPLE_CORPUS

MAX = int(os.environ.get("NEWSDESK_HYPOTHESIS_MAX", "0") or 0)


def examples(n: int) -> settings:
    return settings(max_examples=max(n, MAX), deadline=None, suppress_health_check=[HealthCheck.too_slow])


SYNTAX = [
    '"',
    '""',
    '"Manbij',
    "*",
    "Manb*",
    "NEAR(",
    "NEAR(Manbij civilians)",
    "Manbij NEAR/3 civilians",
    "(((",
    ")))",
    "\\",
    "\\\\x00",
    "'; DROP TABLE articles; --",
    "Manbij' OR '1'='1",
    "%",
    "_",
    "%Manbij%",
    "[a-z]+",
    "(?i)comet",
    ".*",
    "^$",
    "a{1000000}",
    "(a+)+$",
    "AND OR NOT",
    "comet AND NOT",
    "-comet",
    "+comet",
    "comet:",
    "title:comet",
    "{}",
    "?",
    "\x00",
    "\x00Manbij\x00",
    "\u202eManbij\u202c",
    "\u200b",
    "\ufeffcomet",
    "🔥🔥🔥",
    "comet 🚀☄️",
    "\U0001f3f3\ufe0f\u200d\U0001f308",
    "Z\u0351\u0357\u0343a\u0352l\u0346g\u035bo",
    "ﷺ",
    "\ud7ff",
    "\U0010ffff",
    "\ud800",
    "\udcff comet",
    "\r\n\t\v\f",
    "\u2028\u2029",
    "؟من حاصر منبج",
    "мост",
    "橋",
    "1e309",
    "NaN",
    "-0",
    "9" * 400,
]
FRAGMENTS = (
    st.sampled_from(SYNTAX)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "Manbij",
            "comet",
            "library",
            "repairs",
            "rail",
            "strike",
            "wind farm",
            "who",
            "when",
            "how much",
            " ",
        ]
    )
)
HOSTILE = st.lists(FRAGMENTS, max_size=10).map("".join)
MANBIJ_TITLE = "ISIS Stronghold Fled Civilians Surrounded by US-Backed Forces"
FORMAT_CHARS = [
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\u202e",
    "\u202c",
    "\u2066",
    "\x00",
    "\x07",
    "\x1b",
]


pytestmark = pytest.mark.both_stores  # the question tests run on SQLite and on PostgreSQL


@pytest.fixture(scope="module")
def news(tmp_path_factory, module_store_target):
    """The sample archive, on SQLite and then on PostgreSQL: every question test runs on both."""
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(SAMPLE_CORPUS, root / "articles")
    service = NewsService(module_store_target, root / "articles", index_cache=root / "index-cache")
    service.reload()
    service.articles_at_start = service.store.counts()
    yield service
    service.close()


def signature(answer: Answer) -> tuple:
    return (
        answer.no_match,
        [(r.article_id, r.ordinal, r.excerpt.text, tuple(r.excerpt.spans), r.url) for r in answer.results],
    )


def check_answer_or_refusal(service: NewsService, question: str, k: int = 3) -> Answer | None:
    try:
        answer = service.search(question, k=k)
    except QuestionError as exc:
        message = str(exc)
        assert message and "\n" not in message
        assert "empty" in message or "limit is" in message, message
        return None
    assert isinstance(answer, Answer)
    assert answer.question == clean_question(question)
    assert len(answer.results) <= k
    assert answer.no_match or answer.results  # weak matches keep their results, flagged no_match
    for result in answer.results:
        text = result.excerpt.text
        assert len(text) <= 2 * 351 + 2  # a quote, and perhaps a second one from the same article
        assert all(0 <= s < e <= len(text) for s, e in result.excerpt.spans)
        # A quote starts in its passage; what spans two paragraphs, or a second quote, goes on after a line break.
        assert text.split("\n")[0].strip(ELLIPSIS) in result.passage
    return answer


@examples(900)
@given(question=st.text(max_size=600))
def test_any_text_is_answered_or_refused(news, question):
    check_answer_or_refusal(news, question)


@examples(700)
@given(question=HOSTILE)
def test_query_syntax_and_control_characters_are_just_words(news, question):
    check_answer_or_refusal(news, question)


@pytest.mark.parametrize("question", SYNTAX)
def test_each_syntax_question_alone(news, question):
    check_answer_or_refusal(news, question)


@pytest.mark.parametrize(
    "question",
    [
        '"Manbij civilians"',
        "Manbij* civilians*",
        "NEAR(Manbij civilians)",
        "(((Manbij civilians)))",
        "Manbij\\ civilians",
        "Manbij' OR '1'='1' civilians",
        "_Manbij_ civilians;--",
        "[Manbij]+ civilians",
        "Manbij|civilians",
        "^Manbij civilians$",
    ],
)
def test_operators_around_words_answer_as_the_words_do(news, question):
    answer = check_answer_or_refusal(news, question)
    assert answer is not None and not answer.no_match
    assert answer.results[0].article_id == news.search("Manbij civilians").results[0].article_id


@pytest.mark.parametrize(
    ("question", "length"),
    [("a" * 10_000, "10,000"), ("comet " * 2_000, "11,999"), ("🔥" * 10_000, "10,000"), ("x" * 501, "501")],
)
def test_overlong_questions_are_refused_with_the_limit(news, question, length):
    with pytest.raises(QuestionError, match=f"the question is {length} characters long; the limit is 500"):
        news.search(question)


def test_a_percent_sign_after_a_word_is_not_part_of_it(news):
    assert AN.terms("%Manbij% civilians%") == AN.terms("Manbij civilians")


def test_question_at_the_limit_is_answered(news):
    question = ("comet " * 100)[:500]
    assert len(clean_question(question)) == 500
    assert not news.search(question).no_match


@pytest.mark.parametrize("question", ["\u200b" * 10_000, "\x00" * 5, "\u202e\u202c", " \t\n ", ""])
def test_questions_of_only_invisible_characters_are_empty(news, question):
    with pytest.raises(QuestionError, match="the question is empty"):
        news.search(question)


@pytest.mark.parametrize(
    ("hostile", "plain"),
    [
        ("who\u200bsurrounded Manbij", "who surrounded Manbij"),  # a zero-width space still separates words
        ("who surrounded\u200d Man\u00adbij\u2060?", "who surrounded Manbij?"),
        ("\u202ewho surrounded Manbij\u202c", "who surrounded Manbij"),
        ("who\x00 surrounded\x00 Manbij", "who surrounded Manbij"),
        ("\ufeffwho surrounded Manbij", "who surrounded Manbij"),
        ("who   surrounded\t\nManbij", "who surrounded Manbij"),
        ("ｗｈｏ ｓｕｒｒｏｕｎｄｅｄ Ｍａｎｂｉｊ", "who surrounded Manbij"),  # fullwidth: NFKC
    ],
)
def test_invisible_characters_are_removed_before_searching(news, hostile, plain):
    """Format characters are dropped (a zero-width space counts as a space), and the answer is the
    cleaned question's."""
    answer = news.search(hostile)
    assert answer.question == plain
    assert signature(answer) == signature(news.search(plain))
    assert answer.results[0].title == MANBIJ_TITLE  # "Manbij" still finds the article


def _cleaned_the_long_way(question: str) -> str:
    """Every character looked at: format and control characters dropped (but tabs and line breaks), NFKC,
    spaces collapsed."""
    text = question.replace("\u200b", " ")
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc", "Cs") or ch in "\n\t")
    return " ".join(unicodedata.normalize("NFKC", text).split())


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet=st.characters(max_codepoint=0x7F) | st.sampled_from("\u200b\u00ad\ufb01\u00a0e\u0301"))
)
@example("who\rsurrounded\x0bManbij\x1f?")  # controls that str.split() would read as spaces are dropped
def test_plain_ascii_questions_are_cleaned_as_every_other_question(question):
    """Printable ASCII skips the look at each character; the question comes out the same either way."""
    expected = _cleaned_the_long_way(question)
    if not expected:
        with pytest.raises(QuestionError, match="the question is empty"):
            clean_question(question)
    else:
        assert clean_question(question) == expected


def test_lone_surrogates_are_dropped_so_the_question_can_be_stored(news):
    answer = news.search("\udcff\ud800who surrounded Manbij?\udfff")
    assert answer.question == "who surrounded Manbij?"
    assert answer.results[0].title == MANBIJ_TITLE
    news.store.add_feedback(
        guild_id=None,
        channel_id=None,
        user_id="1",
        question=answer.question,
        article_ids=[answer.results[0].article_id],
        vote=1,
    )


def test_emoji_do_not_change_the_answer(news):
    answer = news.search("🔥 who surrounded Manbij? 🚀")
    assert answer.question == "🔥 who surrounded Manbij? 🚀"
    assert signature(answer) == signature(news.search("who surrounded Manbij?"))


WORDS = st.sampled_from(
    [
        "who",
        "surrounded",
        "Manbij",
        "comet",
        "library",
        "repairs",
        "café",
        "e\u0301",
        "ﬁ",
        "4.75%",
        "US-backed",
        "U.S.",
        "£3.20",
        "١٢",
        "ي",
    ]
)


@st.composite
def with_format_chars(draw):
    words = draw(st.lists(WORDS | st.text(max_size=6), min_size=1, max_size=6))
    plain = " ".join(words)
    chars = list(plain)
    for _ in range(draw(st.integers(0, 6))):
        chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from(FORMAT_CHARS)))
    return plain, "".join(chars)


@examples(300)
@given(pair=with_format_chars())
def test_format_characters_anywhere_never_change_the_answer(news, pair):
    plain, hostile = pair
    try:
        expected = signature(news.search(plain))
    except QuestionError as exc:
        with pytest.raises(QuestionError, match=str(exc).split(";")[0].split(":")[0]):
            news.search(hostile)
        return
    answer = news.search(hostile)
    assert answer.question == clean_question(plain)
    assert signature(answer) == expected


def test_the_articles_table_is_intact_after_all_that(news):
    assert news.store.counts() == news.articles_at_start
    if news.store.backend == "postgres":
        listed = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    else:
        listed = "SELECT name FROM sqlite_master WHERE type = 'table'"
    tables = {row[0] for row in news.store.query(listed)}
    assert {"articles", "texts", "passages", "files", "ingest_runs", "feedback", "meta"} <= tables
    if news.store.backend == "sqlite":
        assert news.store.integrity_ok()  # type: ignore[attr-defined]  (PostgreSQL checks its own pages)


# -- analyzer ------------------------------------------------------------------------------------

AN = Analyzer()
TEXTS = st.text(max_size=300) | HOSTILE | st.lists(WORDS | st.sampled_from(SYNTAX), max_size=12).map(" ".join)


@examples(800)
@given(text=TEXTS)
@example(text="a" * 20_000)
@example(text="US-backed U.S. $40bn 4.75% 1,000 café e\u0301 ﬁnance")
def test_analyzer_never_raises_and_spans_point_at_their_terms(text):
    terms = AN.terms(text)
    spans = AN.term_spans(text)
    assert all(isinstance(t, str) and t for t in terms)
    assert [t for _, _, t in spans] == terms  # the highlighted words are the searched words
    for start, end, term in spans:
        assert 0 <= start < end <= len(text)
        assert term in AN.terms(text[start:end]), (text[start:end], term)


# -- excerpts ------------------------------------------------------------------------------------

HOSTILE_PASSAGES = (
    st.lists(
        st.sampled_from(SYNTAX) | WORDS | st.sampled_from([". ", "! ", "? ", "… ", "\n\n", " " * 50]),
        max_size=40,
    ).map("".join)
    | st.text(alphabet=st.characters(categories=["Cf", "Cc", "Mn", "Zs", "Po", "So"]), max_size=400)
    | st.builds(lambda n, w: (w + " ") * n, st.integers(1, 400), WORDS)
)
IDFS = st.sampled_from(
    [
        None,
        lambda t: 1.0,
        lambda t: float("nan"),
        lambda t: float("inf"),
        lambda t: -3.0,
        lambda t: 1 / 0,
        lambda t: "x",
        lambda t: 1e308,
    ]
)


@examples(500)
@given(passage=HOSTILE_PASSAGES, question=TEXTS, idf=IDFS, max_chars=st.integers(-5, 400))
@example(passage="x" * 10_000, question="x", idf=None, max_chars=300)
@example(passage="\u202e" + "Manbij " * 100 + "\u202c", question="Manbij", idf=None, max_chars=50)
def test_excerpt_of_hostile_passages_stays_within_its_limit(passage, question, idf, max_chars):
    excerpt = choose_excerpt(passage, question, AN, idf=idf, max_chars=max_chars)
    assert len(excerpt.text) <= max(max_chars, 1) + 1
    text = excerpt.text
    bodies = {
        text,
        text.removeprefix(ELLIPSIS),
        text.removesuffix(ELLIPSIS),
        text.removeprefix(ELLIPSIS).removesuffix(ELLIPSIS),
    }  # the passage may hold "…" itself
    assert any(passage[excerpt.start : excerpt.start + len(b)] == b for b in bodies), (passage, excerpt)
    assert all(0 <= s < e <= len(excerpt.text) for s, e in excerpt.spans)
    assert excerpt.spans == sorted(excerpt.spans)


@pytest.mark.parametrize("hostile", ["caf\u00ade\u0301", "caf\x00e\u0301", "cafe\u2060\u0301"])
def test_an_accent_after_an_invisible_character_still_composes(hostile):
    assert clean_question(hostile) == clean_question("café") == "café"

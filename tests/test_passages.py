"""Passages (paragraphs, cut or merged) and sentence spans."""

from __future__ import annotations

import re
import tarfile
import time
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.models import Article
from retrieval.parse import parse_file
from retrieval.passages import split_passages, split_sentences
from tests.data import BBC_TAR, SEED, need


def article(*paragraphs: str) -> Article:
    return Article(id="t/1", title="T", body="\n\n".join(paragraphs), source="t/1.txt")


def words(text: str) -> list[str]:
    return text.split()


def check_passages(a: Article, max_chars: int = 1000) -> None:
    passages = split_passages(a, max_chars=max_chars)
    assert [p.ordinal for p in passages] == list(range(len(passages)))
    assert all(p.article_id == a.id for p in passages)
    assert all(len(p.text) <= max_chars for p in passages)
    assert all(p.text == p.text.strip() and p.text for p in passages)
    assert words(" ".join(p.text for p in passages)) == words(a.body)


@cache
def bbc_articles() -> list[Article]:
    with tarfile.open(need(BBC_TAR)) as tar:
        members = [m for m in tar if m.isfile() and m.name.endswith(".txt") and m.name.count("/") == 2]
        return [parse_file(m.name[4:], tar.extractfile(m).read()).articles[0] for m in members]  # type: ignore[union-attr]


# ---------------------------------------------------------------- passages


@pytest.mark.shared_corpus
def test_bbc_passages_cover_every_word_and_stay_under_the_cap():
    articles = bbc_articles()
    started = time.perf_counter()
    for a in articles:
        check_passages(a)
    assert time.perf_counter() - started < 5


@pytest.mark.shared_corpus
def test_bbc_passage_sizes():
    sizes = [len(p.text) for a in bbc_articles() for p in split_passages(a)]
    assert max(sizes) <= 1000
    small = sum(1 for s in sizes if s < 120)
    assert small < 0.01 * len(sizes)  # only articles too short to merge anything


def test_seed_passages():
    a = parse_file("seed.txt", SEED.read_bytes()).articles[0]
    passages = split_passages(a)
    assert len(passages) == 10  # every paragraph is between 120 and 1000 characters
    assert [p.text for p in passages] == a.paragraphs


def test_one_passage_per_ordinary_paragraph():
    paras = ["A" * 300 + ".", "B" * 500 + ".", "C" * 999]
    assert [p.text for p in split_passages(article(*paras))] == paras


def test_tiny_paragraphs_merge_with_the_next():
    dateline = "LONDON (Reuters) -"
    quote = "\u201cWe will win,\u201d he said."
    long_para = "The market rose sharply on Tuesday after the central bank held rates. " * 3
    passages = split_passages(article(dateline, quote, long_para.strip()))
    assert len(passages) == 1
    assert passages[0].text == f"{dateline}\n{quote}\n{long_para.strip()}"


def test_tiny_last_paragraph_merges_with_the_previous():
    long_para = ("Shares in the company fell 5% in early trading in London. " * 4).strip()
    passages = split_passages(article(long_para, "Ends."))
    assert [p.text for p in passages] == [long_para + "\nEnds."]


def test_tiny_paragraph_stays_alone_when_neighbours_are_full():
    full = ("x" * 98 + ". ") * 9 + "y" * 99 + "."  # 1000 characters
    assert len(full) == 1000
    passages = split_passages(article(full, "Tiny.", full))
    assert [len(p.text) for p in passages] == [1000, 5, 1000]


def test_long_paragraph_is_cut_between_sentences_near_the_target():
    sentence = "The committee said the new rules would take effect next year, officials confirmed. "
    para = (sentence * 40).strip()  # about 3,400 characters
    passages = split_passages(article(para))
    assert len(passages) >= 4
    for p in passages:
        assert len(p.text) <= 1000
        assert p.text.endswith(".")
        assert p.text.startswith("The committee")
    assert min(len(p.text) for p in passages) >= 400
    assert " ".join(p.text for p in passages) == para


def test_long_sentence_without_punctuation_is_cut_at_spaces():
    para = " ".join(f"word{i}" for i in range(600))  # about 4,300 characters, no sentence end
    passages = split_passages(article(para))
    assert all(len(p.text) <= 1000 for p in passages)
    assert " ".join(p.text for p in passages) == para


def test_unbroken_run_of_characters_is_cut_hard():
    para = "x" * 2500
    passages = split_passages(article(para))
    assert all(len(p.text) <= 1000 for p in passages)
    assert "".join(p.text for p in passages) == para


def test_empty_body_has_no_passages():
    assert split_passages(article("")) == []


def test_custom_sizes():
    para = ("Short sentence number one here. " * 30).strip()
    passages = split_passages(article(para), target_chars=200, max_chars=300, min_chars=50)
    assert all(len(p.text) <= 300 for p in passages)
    assert len(passages) >= 3


_WORD = st.text(
    alphabet=st.sampled_from(list("abcXYZ.!?\"'\u201d\u201c0123456789,")), min_size=1, max_size=30
)
_PARA = st.lists(_WORD, min_size=1, max_size=300).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(paras=st.lists(_PARA, min_size=0, max_size=8))
def test_passages_property(paras):
    check_passages(article(*paras))


# ---------------------------------------------------------------- sentences


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mr. Smith arrived. He sat down.", ["Mr. Smith arrived.", "He sat down."]),
        ("Rates rose to 4.75% today. Banks reacted.", ["Rates rose to 4.75% today.", "Banks reacted."]),
        ("The U.S. Army moved. Troops left.", ["The U.S. Army moved.", "Troops left."]),
        ("It opened on Jan. 5 in Paris. Crowds came.", ["It opened on Jan. 5 in Paris.", "Crowds came."]),
        ('"We won." The coach smiled.', ['"We won."', "The coach smiled."]),
        ("\u201cWe won.\u201d The coach smiled.", ["\u201cWe won.\u201d", "The coach smiled."]),
        ("He asked why? She said no! Fine.", ["He asked why?", "She said no!", "Fine."]),
        ("J. K. Rowling wrote it. Dr. Who did not.", ["J. K. Rowling wrote it.", "Dr. Who did not."]),
        ("Meet at 3 p.m. on Monday. Bring food.", ["Meet at 3 p.m. on Monday.", "Bring food."]),
        ("He lives at No. 10 Downing St. in London.", ["He lives at No. 10 Downing St. in London."]),
        ("Fruit, e.g. apples, is good. Eat it.", ["Fruit, e.g. apples, is good.", "Eat it."]),
        ("Wait... Then it came.", ["Wait...", "Then it came."]),
        ("It rose 5%. 2004 was better.", ["It rose 5%.", "2004 was better."]),
        ("  Leading space. And trailing.  ", ["Leading space.", "And trailing."]),
        ("No end punctuation", ["No end punctuation"]),
        ("", []),
        ("   ", []),
    ],
)
def test_split_sentences(text, expected):
    assert sentences(text) == expected


@pytest.mark.shared_corpus
def test_sentence_spans_are_ordered_and_trimmed():
    text = bbc_articles()[0].body
    spans = split_sentences(text)
    assert spans == sorted(spans)
    for (_, e), (s2, _) in zip(spans, spans[1:], strict=False):
        assert e <= s2
        assert text[e:s2].strip() == ""
    assert all(text[s:e] == text[s:e].strip() for s, e in spans)
    assert re.sub(r"\s+", "", "".join(text[s:e] for s, e in spans)) == re.sub(r"\s+", "", text)


@pytest.mark.shared_corpus
def test_split_sentences_is_fast():
    text = " ".join(a.body for a in bbc_articles()[:500])
    started = time.perf_counter()
    spans = split_sentences(text)
    assert time.perf_counter() - started < 1.0
    assert len(spans) > 5000

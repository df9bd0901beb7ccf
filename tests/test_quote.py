"""Choosing a quote's window: the answer-type check made only for the windows that could still win chooses
the same window as checking every window, and an article's second quote reuses what its first laid out."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from retrieval.analyze import Analyzer
from retrieval.question import build_query
from retrieval.quote import (
    _TYPE_BONUS,
    _best_window,
    _candidate,
    _question_word_test,
    _score,
    _sentences,
    _windows,
    choose_quote,
    quote_weights,
)

AN = Analyzer()
ARTICLES = Path(__file__).resolve().parents[1] / "data" / "articles"
STEMS = ["who", "how many", "when did", "where did", "why did", "what colour", "which company", ""]


def _articles() -> list[list[str]]:
    """The sample corpus's articles (files and JSON Lines briefs), each as its paragraphs."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(ARTICLES.rglob("*.txt"))]
    for line in (ARTICLES / "local" / "briefs.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            texts.append(item.get("body") or item["text"])
    return [[p.strip() for p in t.split("\n\n") if p.strip()] for t in texts]


def _questions(passages: list[str], rng: random.Random, n: int) -> list[str]:
    words = " ".join(passages).split()
    out = []
    for _ in range(n):
        start = rng.randrange(max(1, len(words) - 6))
        out.append(f"{rng.choice(STEMS)} {' '.join(words[start : start + rng.randint(1, 6)])}?".strip())
    return out


def _every_window_checked(sentences, windows, query):
    """The reference: every sentence's answer-type check made, every window scored, the first best kept."""
    bonus = _TYPE_BONUS[query.kind]
    has_own = not query.own.isdisjoint(t for s in sentences for _, _, t in s.matches)
    test = _question_word_test(query, AN)
    best = None
    for i, j, *_ in windows:
        top = max(_candidate(s, query, test) for s in sentences[i : j + 1]) if bonus and has_own else 0.0
        score = _score((i, j, *_), bonus * top)
        if best is None or score > best[0] + 1e-9:
            best = (score, i, j)
    return best


def test_the_window_chosen_is_the_one_every_window_checked_would_choose():
    rng = random.Random(3)
    articles = _articles()
    assert len(articles) >= 5
    compared = with_answer_bonus = 0
    for passages in articles:
        numbered = list(enumerate(passages))
        for question in _questions(passages, rng, 40):
            query = build_query(question, AN)
            weights = quote_weights(query, None)
            centre = rng.randrange(len(passages))
            sentences = []
            for ordinal, text in numbered[max(0, centre - 1) : centre + 2]:
                sentences += _sentences(ordinal, text, AN, weights)
            windows = _windows(sentences, [centre], query, weights, max_chars=rng.choice([120, 350]))
            expected = _every_window_checked(sentences, windows, query)
            fresh = [s.__class__(s.ordinal, s.start, s.end, s.text, s.matches) for s in sentences]
            assert _best_window(windows, fresh, query, AN) == expected, question
            compared += 1
            with_answer_bonus += bool(expected and _TYPE_BONUS[query.kind])
    assert compared >= 200 and with_answer_bonus >= 50


def test_only_the_windows_that_could_win_are_checked_for_an_answer():
    passages = [
        "The council approved the plan on Tuesday. Work starts next spring, said Mayor Ann Blake.",
        "Residents asked about parking. The council said more spaces would come later. "
        "Critics including Tom Reed and Sara Lund said the plan ignored the harbour.",
    ]
    query = build_query("who approved the council plan?", AN)
    weights = quote_weights(query, None)
    sentences = _sentences(0, passages[0], AN, weights) + _sentences(1, passages[1], AN, weights)
    windows = _windows(sentences, [0], query, weights, max_chars=350)
    best = _best_window(windows, sentences, query, AN)
    assert best is not None and sentences[best[1]].text.startswith("The council approved")
    looked_at = [s.candidate is not None for s in sentences]
    assert looked_at[best[1]] and not all(looked_at)


@pytest.mark.parametrize("second", [True, False])
def test_an_articles_second_quote_reads_its_passages_from_the_first(second):
    passages = list(
        enumerate(
            [
                "Ferries to the island stop on Friday.",
                "The operator said storms had damaged the pier.",
                "Repairs will take until March, the operator said.",
                "A bus will run instead. The pier was built in 1911.",
            ]
        )
    )
    query = build_query("when will the pier repairs finish?", AN)
    read: list[int] = []

    def layout(ordinal, text):
        read.append(ordinal)
        return None

    laid_out: dict = {}
    first = choose_quote(passages, [2], query, AN, following=1, layout=layout, laid_out=laid_out)
    assert "March" in first.excerpt.text
    assert sorted(read) == [0, 2, 3]
    if second:
        again = choose_quote(
            passages, [3], query, AN, following=0, lead=False, layout=layout, laid_out=laid_out
        )
        assert "1911" in again.excerpt.text
        assert sorted(read) == [0, 2, 3]  # nothing read again
    alone = choose_quote(passages, [3], query, AN, following=0, lead=False)
    assert (
        alone.excerpt == choose_quote(passages, [3], query, AN, following=0, lead=False, laid_out={}).excerpt
    )

"""Choosing a quote's window: the compiled windows and scores equal a plain-Python reference, the answer-type
check made only for the windows that could still win chooses the same window as checking every window, and an
article's second quote reuses what its first laid out."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from retrieval.analyze import Analyzer
from retrieval.question import build_query
from retrieval.quote import (
    _LEAVE_PASSAGE,
    _PER_PASSAGE,
    _PER_SENTENCE,
    _TYPE_BONUS,
    FOCUS,
    LEAD_BONUS,
    MAX_SENTENCES,
    WEAK_CANDIDATE,
    _best_window,
    _candidate,
    _question_word_test,
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


def _reference_windows(sentences, found, query, weights, max_chars):
    """The windows as plain Python (first, last, and the parts of the score), written for reading."""
    total = sum(weights.values()) or 1.0

    def weight(terms):
        return sum(w for t, w in weights.items() if t in terms)

    held_terms = [{t for _, _, t in s.matches} for s in sentences]
    own = [bool(terms & query.own) for terms in held_terms]
    has_own = any(t in query.own for t in weights)
    out = []
    for i, first in enumerate(sentences):
        covered, length, top_cover = set(), -1, -1.0
        for j in range(i, min(i + MAX_SENTENCES, len(sentences))):
            if j > i and sentences[j].ordinal - sentences[j - 1].ordinal > 1:
                break
            length += len(sentences[j].text) + 1
            if j > i and length > max_chars * 1.5:
                break
            covered |= held_terms[j]
            top_cover = max(top_cover, weight(held_terms[j]) / total)
            if has_own and not any(own[i : j + 1]):
                continue
            touches = any(s.ordinal in found for s in sentences[i : j + 1])
            distance = min(abs(first.ordinal - c) for c in found)
            out.append(
                (
                    i,
                    j,
                    FOCUS * top_cover + (1 - FOCUS) * weight(covered) / total,
                    _PER_SENTENCE * (j - i) + (0.1 if length > max_chars else 0.0),
                    first.ordinal == 0,
                    weight(held_terms[i]) / total >= top_cover and j > i,
                    0.0 if touches else _LEAVE_PASSAGE + _PER_PASSAGE * min(distance - 1, 5),
                    first.ordinal != found[0] and sentences[j].ordinal != found[0],
                )
            )
    return out


def _reference_score(window, bonus):
    _, _, held, cost, in_lead, follows, away, elsewhere = window
    score = held + bonus - cost
    score += LEAD_BONUS if in_lead else 0.0
    score += 0.02 if follows else 0.0
    score -= away
    return score - (_LEAVE_PASSAGE / 2 if elsewhere else 0.0)


def _every_window_checked(sentences, windows, query):
    """The reference: every sentence's answer-type check made, every window scored, the first best kept."""
    bonus = _TYPE_BONUS[query.kind]
    has_own = not query.own.isdisjoint(t for s in sentences for _, _, t in s.matches)
    test = _question_word_test(query, AN)
    best = None
    for window in windows:
        i, j = window[:2]
        top = max(_candidate(s, query, test) for s in sentences[i : j + 1]) if bonus and has_own else 0.0
        score = _reference_score(window, bonus * top)
        if best is None or score > best[0] + 1e-9:
            best = (score, i, j)
    return best


def _cases(rng, per_article=40):
    """(sentences, found, query, weights, max_chars) around a random passage of each sample article."""
    for passages in _articles():
        numbered = list(enumerate(passages))
        for question in _questions(passages, rng, per_article):
            query = build_query(question, AN)
            weights = quote_weights(query, None)
            centre = rng.randrange(len(passages))
            found = [centre] + rng.sample(range(len(passages)), min(rng.randint(0, 2), len(passages)))
            sentences = []
            for ordinal, text in numbered[max(0, centre - 1) : centre + 2] + numbered[:1] * (centre > 1):
                sentences += _sentences(ordinal, text, AN, weights)
            yield sentences, found, query, weights, rng.choice([120, 350])


def test_the_compiled_windows_equal_the_plain_reference():
    compared = 0
    for sentences, found, query, weights, max_chars in _cases(random.Random(5)):
        sentences.sort(key=lambda s: (s.ordinal, s.start))
        expected = _reference_windows(sentences, found, query, weights, max_chars)
        got = _windows(sentences, found, query, weights, max_chars)
        assert list(zip(got.first.tolist(), got.last.tolist(), strict=True)) == [w[:2] for w in expected]
        bonus = _TYPE_BONUS[query.kind]
        for k, window in enumerate(expected):
            assert got.plain[k] == pytest.approx(_reference_score(window, 0.0), abs=1e-12)
            assert got.weak[k] == pytest.approx(_reference_score(window, bonus * WEAK_CANDIDATE), abs=1e-12)
            assert got.full[k] == pytest.approx(_reference_score(window, bonus), abs=1e-12)
        reach = got.full.tolist()
        assert got.order.tolist() == sorted(range(len(reach)), key=lambda k: (-reach[k], k))
        compared += bool(expected)
    assert compared >= 150


def test_the_window_chosen_is_the_one_every_window_checked_would_choose():
    compared = with_answer_bonus = 0
    for sentences, found, query, weights, max_chars in _cases(random.Random(3)):
        sentences.sort(key=lambda s: (s.ordinal, s.start))
        expected = _every_window_checked(
            sentences, _reference_windows(sentences, found, query, weights, max_chars), query
        )
        fresh = [s.__class__(s.ordinal, s.start, s.end, s.text, s.matches) for s in sentences]
        best = _best_window(_windows(fresh, found, query, weights, max_chars), fresh, query, AN)
        if expected is None:
            assert best is None, query
        else:
            assert best is not None and best[1:] == expected[1:], query
            assert best[0] == pytest.approx(expected[0], abs=1e-12)
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

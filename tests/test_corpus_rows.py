"""The rows a search process reads ahead: the newest articles' rows, kept for the version it answers from, give
the same answers as reading them from the store, and questions about those articles read no row again."""

from __future__ import annotations

import random

import pytest

import retrieval.corpus_rows as corpus_rows
from retrieval import NewsService

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL

READS = ("articles_by_id", "passage_ordinals", "passages_at")


def comparable(answer) -> dict:
    shown = answer.to_json()
    shown.pop("took_ms", None)
    return shown


def questions_about(service: NewsService, rng: random.Random) -> list[str]:
    """Titles and phrases of the sample corpus's passages, as members ask them, and a follow-up word or two."""
    out = []
    for headline in service.headlines(50):
        _, passages = service.article(headline.article_id)
        out.append(f"what happened with {headline.title.lower()}?")
        for _, text in passages:
            words = text.split()
            for _ in range(3):
                start = rng.randrange(max(1, len(words) - 6))
                out.append("who " + " ".join(words[start : start + rng.randint(2, 6)]) + "?")
    return out


def reader_of(service: NewsService) -> NewsService:
    """A second reader of the same database and index, as a search process opens it."""
    return NewsService(**service.process_config())


def count_reads(service: NewsService, monkeypatch) -> list[str]:
    """The store reads an answer makes from now on, by name."""
    calls: list[str] = []
    corpus = service._corpus(service.snapshot)
    for name in READS:
        real = getattr(corpus, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(corpus, name, counted)
    return calls


def test_rows_read_ahead_answer_as_the_store_does_and_are_not_read_again(service, monkeypatch):
    questions = questions_about(service, random.Random(5))
    assert len(questions) > 60
    expected = [comparable(service.search(q, k=3)) for q in questions]

    reader = reader_of(service)
    try:
        kept = reader.keep_newest()
        articles = service.snapshot.index.passage_ids_of(h.article_id for h in service.headlines(200))
        assert kept == len(articles)
        # and every passage's layout, checked against its text
        layouts = reader.snapshot.index._layouts
        assert layouts is not None
        assert len(layouts._checked) == len(layouts._cache) == sum(len(ids) for ids in articles.values())
        calls = count_reads(reader, monkeypatch)
        assert [comparable(reader.search(q, k=3)) for q in questions] == expected
        assert calls == []  # every article, its passages and the ordinals past its last were kept
    finally:
        reader.close()


def test_only_the_newest_articles_are_read_ahead_within_the_bounds(service, monkeypatch):
    monkeypatch.setattr(corpus_rows, "ARTICLES_KEPT", 4)  # 3 read ahead
    monkeypatch.setattr(corpus_rows, "KEEP_QUERY", 2)  # in two rounds of queries
    newest = list(service.snapshot.index.passage_ids_of(h.article_id for h in service.headlines(200)))
    assert len(newest) > 3
    reader = reader_of(service)
    try:
        assert reader.keep_newest() == 3
        rows = reader.snapshot.rows
        assert sorted(rows._articles) == sorted(newest[:3])
        # The newest are kept last, so that past a bound they are dropped last.
        assert list(rows._articles)[-1] == newest[0]
        questions = [f"what happened with {h.title.lower()}?" for h in service.headlines(200)]
        calls = count_reads(reader, monkeypatch)
        for question in questions:
            assert comparable(reader.search(question, k=3)) == comparable(service.search(question, k=3))
        assert calls  # the older articles are read when asked about, as before
    finally:
        reader.close()


def test_a_passage_bound_stops_the_read_ahead_before_it(service, monkeypatch):
    monkeypatch.setattr(corpus_rows, "PASSAGES_KEPT", 8)  # at most 6 passages read ahead
    reader = reader_of(service)
    try:
        kept = reader.keep_newest()
        rows = reader.snapshot.rows
        assert 1 <= kept == len(rows._articles)
        assert len(rows._ordinals) <= 6
        assert len([t for t in rows._passages.values() if t is not None]) == len(rows._ordinals)
    finally:
        reader.close()


def test_an_empty_archive_reads_nothing_ahead(tmp_path, store_target):
    empty = tmp_path / "empty"
    empty.mkdir()
    service = NewsService(store_target, empty, index_cache=tmp_path / "index-cache")
    try:
        service.reload()
        assert service.keep_newest() == 0
    finally:
        service.close()


def test_a_search_process_reads_ahead_before_it_answers_from_a_version(service, sample_corpus):
    from retrieval.search_process import _warm_up
    from tests.test_faults import write_article

    reader = reader_of(service)
    try:
        _warm_up(reader)  # at start
        assert len(reader.snapshot.rows._articles) == len(
            service.snapshot.index.passage_ids_of(h.article_id for h in service.headlines(200))
        )
        write_article(
            sample_corpus, "comet.txt", "Comet seen over Reykjavik", "Astronomers saw it on Tuesday."
        )
        service.reload()
        assert reader.refresh_if_changed()
        assert not reader.snapshot.rows._articles  # a new version starts with none kept
        _warm_up(reader)  # as after following a reload
        assert "comet" in reader.snapshot.rows._articles
    finally:
        reader.close()

import datetime
import gzip
import json
import threading

import numpy as np
import pytest
import rank_bm25

from retrieval.analyze import Analyzer
from retrieval.index import BM25Index, IndexDoc, IndexLoadError
from tests.data import BBC_JSONL, generated_news, need


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


def doc(pid, article, text, title="", published=None, dup_key=None):
    return IndexDoc(pid, article, title, text, published, dup_key or f"hash-{article}")


TINY = [
    doc(
        1,
        "a1",
        "The central bank raised interest rates by half a point on Tuesday.",
        "Bank raises rates",
        "2016-06-21T12:02:16",
    ),
    doc(2, "a1", "Economists had expected the bank to hold rates steady.", "Bank raises rates", "2016-06-21"),
    doc(3, "a1", "The bank said inflation was the main worry for rates.", "Bank raises rates", "2016-06-21"),
    doc(4, "a2", "The football club signed a new striker from Brazil.", "Club signs striker", "2015-01-02"),
    doc(5, "a3", "Oil prices fell sharply as OPEC failed to agree output cuts.", "Oil falls", None),
    doc(
        6,
        "a4",
        "Oil prices fell sharply as OPEC failed to agree output cuts.",
        "Oil falls",
        "2014-03-03",
        dup_key="hash-a3-copy",
    ),
    doc(
        7,
        "a5",
        "The US-backed government announced $40bn of spending, 4.75% more than in 2016.",
        "Budget",
        "2017-05-05",
    ),
    doc(
        8,
        "a6",
        "Oil prices fell sharply as OPEC failed to agree output cuts.",
        "Oil falls",
        "2014-03-04",
        dup_key="hash-a3",
    ),
]


@pytest.fixture(scope="module")
def tiny(analyzer):
    return BM25Index.build(TINY, analyzer)


@pytest.fixture(params=["generated", pytest.param("bbc", marks=pytest.mark.shared_corpus)])
def source(request) -> str:
    """Where the many-passage tests take their text: made on the spot, and BBC News when it is at hand."""
    return request.param


def news_docs(source, n_articles=120, *, every_passage_its_own=False):
    if source == "generated":
        rows = generated_news(n_articles)
    else:
        rows = []
        with gzip.open(need(BBC_JSONL), "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i >= n_articles:
                    break
                rows.append(json.loads(line))
    docs = []
    for row in rows:
        for para in (p for p in row["body"].split("\n\n") if p.strip()):
            if every_passage_its_own:  # no per-article cap or duplicate collapsing in play
                docs.append(IndexDoc(len(docs), str(len(docs)), "", para, None, str(len(docs))))
            else:
                docs.append(IndexDoc(len(docs), row["id"], row["title"], para, None, row["id"]))
    return docs, rows


@pytest.mark.parametrize(
    ("variant", "cls"),
    [("okapi", rank_bm25.BM25Okapi), ("plus", rank_bm25.BM25Plus), ("l", rank_bm25.BM25L)],
)
def test_scores_equal_rank_bm25_on_real_text(analyzer, source, variant, cls):
    docs, rows = news_docs(source)
    assert len(docs) > 400
    index = BM25Index.build(docs, analyzer, variant=variant, k1=1.2, b=0.75, include_title=False)
    reference = cls([analyzer.terms(d.text) for d in docs], k1=1.2, b=0.75)
    questions = [r["title"] for r in rows] + [d.text.split(".")[0] for d in docs[::7]]
    assert len(questions) > 150
    doc_terms = [set(analyzer.terms(d.text)) for d in docs]
    for question in questions:
        terms = analyzer.terms(question)
        expected = reference.get_scores(terms)
        np.testing.assert_allclose(index.score_all(terms), expected, rtol=0, atol=1e-9)
        ranking = index.search(question, k=10, per_article=100)
        for hit in ranking.hits:
            assert abs(hit.score - expected[hit.passage_id]) < 1e-9
        if ranking.hits:
            assert abs(ranking.hits[0].score - expected.max()) < 1e-9
            assert [h.score for h in ranking.hits] == sorted((h.score for h in ranking.hits), reverse=True)
            matching = sum(1 for tokens in doc_terms if any(t in tokens for t in terms))
            exact = index.search(question, k=len(docs), per_article=100).total  # every row visited
            assert exact == matching
            assert abs(ranking.total - matching) <= 0.2 * matching  # estimated when rows were skipped


def test_pruned_top_k_equals_full_scoring(analyzer, source):
    docs, rows = news_docs(source, 300, every_passage_its_own=True)
    index = BM25Index.build(docs, analyzer, include_title=False)
    reference = rank_bm25.BM25Okapi([analyzer.terms(d.text) for d in docs], k1=index.k1, b=index.b)
    for row in rows[::5]:
        question = row["body"].split(".")[1] + " " + row["title"]
        expected = np.sort(reference.get_scores(analyzer.terms(question)))[::-1][:20]
        got = [h.score for h in index.search(question, k=20, per_article=1000).hits]
        np.testing.assert_allclose(got, expected[: len(got)], atol=1e-9)


def test_tiny_corpus_ranking(tiny):
    ranking = tiny.search("Why did the bank raise interest rates?", k=3, per_article=3)
    assert [h.passage_id for h in ranking.hits][0] == 1
    assert {"bank", "rate", "interest"} <= set(ranking.terms) | {"interest"}
    assert not ranking.no_match
    assert tiny.search("new striker Brazil").hits[0].article_id == "a2"
    assert tiny.search("How much did the US-backed government spend, $40bn?").hits[0].passage_id == 7
    assert tiny.search("4.75%").hits[0].passage_id == 7


def test_idf(tiny):
    assert tiny.idf("striker") > tiny.idf("bank") > 0
    assert tiny.idf("zzzz") == 0.0


def test_per_article_cap(tiny):
    pids = [h.passage_id for h in tiny.search("bank rates", k=5, per_article=2).hits]
    assert sum(p in (1, 2, 3) for p in pids) == 2
    pids = [h.passage_id for h in tiny.search("bank rates", k=5, per_article=1).hits]
    assert sum(p in (1, 2, 3) for p in pids) == 1


def test_duplicates_collapse(tiny):
    hits = tiny.search("oil prices OPEC output cuts", k=5).hits
    # a3 and a6 share a dup_key; a4 has the same title and first passage
    assert [h.article_id for h in hits].count("a3") + [h.article_id for h in hits].count("a4") + [
        h.article_id for h in hits
    ].count("a6") == 1


def test_date_range(tiny):
    hits = tiny.search("oil prices", since=datetime.date(2014, 1, 1), until=datetime.date(2014, 12, 31)).hits
    assert hits and all(h.article_id in ("a4", "a6") for h in hits)
    assert tiny.search("bank rates", since=datetime.date(2017, 1, 1)).hits == []
    # undated articles drop out as soon as a range is given
    hits = tiny.search("oil prices OPEC", until=datetime.date(2030, 1, 1), per_article=5, k=10).hits
    assert "a3" not in {h.article_id for h in hits}
    hits = tiny.search("bank", since=datetime.date(2016, 6, 21), until=datetime.date(2016, 6, 21)).hits
    assert hits and {h.article_id for h in hits} == {"a1"}


def test_no_match_on_nonsense_and_unknown_words(tiny):
    assert tiny.search("flurbogast zanzibarian kwepo").no_match
    assert tiny.search("flurbogast zanzibarian kwepo").hits == []
    assert tiny.search("").no_match
    assert tiny.search("the of and what").no_match
    assert tiny.search("What did the quantum chromodynamics lattice flurbogast say about rates?").no_match
    assert not tiny.search("What did the striker from Brazil sign?").no_match


def test_offset_paging(analyzer, source):
    docs, _ = news_docs(source, 60)
    index = BM25Index.build(docs, analyzer)
    full = index.search("government election minister tax", k=10)
    page1 = index.search("government election minister tax", k=5)
    page2 = index.search("government election minister tax", k=5, offset=5)
    assert page1.hits + page2.hits == full.hits
    assert full.total >= len(full.hits) == 10
    assert index.search("government", k=5, offset=10_000).hits == []


def test_save_load_round_trip(tmp_path, analyzer, source):
    docs, rows = news_docs(source, 60)
    index = BM25Index.build(docs, analyzer)
    target = tmp_path / "index"
    index.save(target)
    assert (target / "manifest.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    loaded = BM25Index.load(target)
    assert loaded.n_passages == index.n_passages
    assert loaded.analyzer.language == "english"
    for row in rows[:30]:
        a = index.search(row["title"], k=8)
        b = loaded.search(row["title"], k=8)
        assert a == b
    assert loaded.idf("govern") == index.idf("govern")
    index.save(target)  # replacing an existing index works
    assert BM25Index.load(target).n_passages == index.n_passages


def test_load_errors(tmp_path, tiny):
    with pytest.raises(IndexLoadError, match="missing"):
        BM25Index.load(tmp_path / "nowhere")
    target = tmp_path / "idx"
    tiny.save(target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["version"] = 999
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexLoadError, match="version"):
        BM25Index.load(target)
    tiny.save(target)
    (target / "post_doc.npy").write_bytes(b"garbage")
    with pytest.raises(IndexLoadError):
        BM25Index.load(target)
    tiny.save(target)
    (target / "manifest.json").write_text("{not json")
    with pytest.raises(IndexLoadError):
        BM25Index.load(target)


def test_thread_safety_smoke(analyzer, source):
    docs, rows = news_docs(source, 100)
    index = BM25Index.build(docs, analyzer)
    questions = [r["title"] for r in rows]
    expected = {q: index.search(q, k=5) for q in questions}
    errors = []

    def worker(seed):
        order = questions[seed:] + questions[:seed]
        for q in order * 3:
            if index.search(q, k=5) != expected[q]:
                errors.append(q)

    threads = [threading.Thread(target=worker, args=(i * 7,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_questions_of_common_words_rank_exactly_with_ties_and_few_hits(analyzer):
    # A small vocabulary makes every question touch most passages (the one-pass path for heavy questions);
    # repeated passages make ties; a rare word makes k larger than the hits.
    rng = np.random.default_rng(5)
    words = ["market", "price", "bank", "rate", "growth", "trade", "oil", "share", "profit", "loss"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(3, 12)))) for _ in range(300)]
    texts += texts[:40]  # exact copies: equal scores
    texts.append("zebra market")
    docs = [doc(i, f"a{i}", t) for i, t in enumerate(texts)]
    index = BM25Index.build(docs, analyzer, include_title=False)
    reference = rank_bm25.BM25Okapi([analyzer.terms(t) for t in texts], k1=index.k1, b=index.b)
    for question in (
        "market price bank rate growth",
        "oil share profit loss trade price",
        "zebra",
        "zebra oil",
    ):
        expected = reference.get_scores(analyzer.terms(question))
        order = sorted(range(len(texts)), key=lambda i: (-expected[i], i))
        hits = index.search(question, k=25, per_article=1000, min_coverage=0).hits
        matching = [i for i in order if expected[i] > 0]
        assert len(hits) == min(25, len(matching))
        assert [h.passage_id for h in hits] == matching[: len(hits)]  # ties: lower passage number first
        np.testing.assert_allclose([h.score for h in hits], expected[matching[: len(hits)]], atol=1e-9)


@pytest.mark.parametrize("dated", [False, True])
def test_questions_that_turn_heavy_on_the_way_rank_exactly(analyzer, dated):
    # Five question words in about 100 of 1,600 passages each: their rows add up to less than a third of the
    # passages (not heavy at the start), but the first rows touch more than a sixteenth of them before
    # MaxScore can stop, so the rest is added up the heavy way. Ranks, scores and the number of passages
    # matched are exact, with and without a date range.
    rng = np.random.default_rng(11)
    asked = ["harbour", "ferry", "storm", "pier", "council"]
    filler = [f"word{i}" for i in range(400)]
    texts, days = [], []
    for _ in range(1600):
        words = list(rng.choice(filler, size=8))
        words += [w for w in asked if rng.random() < 0.062]
        texts.append(" ".join(words))
        days.append(datetime.date(2016, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 60))))
    docs = [doc(i, f"a{i}", t, published=days[i].isoformat()) for i, t in enumerate(texts)]
    index = BM25Index.build(docs, analyzer, include_title=False)
    reference = rank_bm25.BM25Okapi([analyzer.terms(t) for t in texts], k1=index.k1, b=index.b)
    since, until = (datetime.date(2016, 1, 5), datetime.date(2016, 2, 25)) if dated else (None, None)
    inside = [not dated or since <= day <= until for day in days]
    for question in ("harbour ferry storm pier council", "ferry storm pier", "harbour council storm"):
        expected = reference.get_scores(analyzer.terms(question))
        matching = sorted(
            (i for i in range(len(texts)) if expected[i] > 0 and inside[i]), key=lambda i: (-expected[i], i)
        )
        assert len(matching) > 1600 // 16  # enough to turn heavy
        ranking = index.search(question, k=20, per_article=1000, min_coverage=0, since=since, until=until)
        assert [h.passage_id for h in ranking.hits] == matching[:20]
        np.testing.assert_allclose([h.score for h in ranking.hits], expected[matching[:20]], atol=1e-9)
        assert ranking.total == len(matching)


def _chunking_corpus() -> list[IndexDoc]:
    """Generated news with what the merge must get right: near-duplicate articles (same title, first
    passage one word apart), exact duplicates (same dup_key), an article whose passages are not next to
    each other, and empty passages."""
    rows = generated_news(150, seed=3)
    docs: list[IndexDoc] = []
    for i, row in enumerate(rows):
        paragraphs = [p for p in row["body"].split("\n\n") if p.strip()]
        key = row["id"] if i % 10 else "shared-key"  # every tenth article: one exact-duplicate group
        for para in paragraphs:
            docs.append(IndexDoc(len(docs), row["id"], row["title"], para, "2016-06-21", key))
        if i % 7 == 0:  # a near copy under another id
            first, *rest = paragraphs
            near = [first + " again", *rest]
            for para in near:
                docs.append(
                    IndexDoc(len(docs), row["id"] + "-copy", row["title"], para, None, row["id"] + "c")
                )
    docs.append(
        IndexDoc(len(docs), "generated/0003", rows[3]["title"], "a late passage of article three", None, "x")
    )
    docs.append(IndexDoc(len(docs), "empty", "", "", None, "empty"))
    return docs


@pytest.mark.parametrize(("chunk", "cache"), [(1, 3), (7, 50), (64, 400_000)])
def test_a_build_in_chunks_equals_the_one_shot_build(analyzer, chunk, cache):
    docs = _chunking_corpus()
    assert len(docs) > 10 * 64  # every chunk size below makes many runs to merge
    whole = BM25Index.build(docs, analyzer, chunk_passages=len(docs))
    parts = BM25Index.build(docs, Analyzer(), chunk_passages=chunk, word_cache=cache)
    assert parts._manifest() == whole._manifest()
    for name, values in whole._a.items():
        assert parts._a[name].dtype == values.dtype, name
        np.testing.assert_array_equal(parts._a[name], values, err_msg=name)
    groups = whole._a["art_group"]
    assert len(set(groups.tolist())) < len(groups) - 20  # duplicates were collapsed (the merge was exercised)
    hits = parts.search(docs[0].text, k=5, per_article=1).hits
    assert hits[0].article_id == "generated/0000"
    assert "generated/0000-copy" not in [h.article_id for h in hits]  # its near copy is one group with it


def test_a_build_without_room_for_its_scratch_files_keeps_them_in_memory(analyzer, monkeypatch):
    docs = _chunking_corpus()
    whole = BM25Index.build(docs, analyzer, chunk_passages=len(docs))

    def no_room(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("retrieval.index.tempfile.TemporaryDirectory", no_room)
    parts = BM25Index.build(docs, analyzer, chunk_passages=50)
    for name, values in whole._a.items():
        np.testing.assert_array_equal(parts._a[name], values, err_msg=name)

"""Passage layouts kept with the index equal the layouts computed from the text, and quotes come out the same
with and without them."""

import gc
import json

import numpy as np
import pytest

from retrieval.analyze import Analyzer
from retrieval.index import BM25Index, IndexDoc
from retrieval.layout import LayoutBuilder, Layouts, load_layout, passage_layout
from retrieval.question import build_query
from retrieval.quote import choose_quote

HOSTILE = [
    "The central bank raised interest rates by half a point on Tuesday. Economists had expected a hold.",
    "Mr. Smith went to Washington. He said: \u201cNo.\u201d Then he left! Did he? Yes\u2026 He did.",
    "  leading and trailing whitespace.  Second   sentence\there.\n\nA new paragraph.  ",
    "no\u00a0break\u2009thin\u3000ideographic\x1cfile-separator words. And More words.",
    "Caf\u00e9 na\u0308ive Z\u00fcrich. \u00c5ngstr\u00f6m units. Stra\u00dfe.",
    "$40bn \u00a34.6bn 4.75% 1,000 2,500.50 e.g. the U.S. economy grew at 3 p.m. on Monday. No. 10 said so.",
    "\u0643\u062a\u0627\u0628 \u0639\u064e\u0631\u064e\u0628\u0650\u064a\u0651. \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u06f2\u06f0\u06f1\u06f6.",
    "US-backed\u2010hyphens\u2011everywhere -- - ' \u2019 rock\u2019n\u2019roll. The end.",
    "&amp; &#8220;quoted&#8221; <b>tags</b> (brackets) [1]. Entities stay as written.",
    "x" * 3000 + " tail. And a sentence.",
    "",
    "   ",
    "...",
    "emoji \U0001f600 mixed\U0001f600text. Another one \U0001f4a5!",
    "the the the the. repeated repeated. chunk the the.",
]


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


def _stored(texts, analyzer):
    builder = LayoutBuilder(analyzer)
    vocab: dict[str, int] = {}
    for text in texts:
        terms = builder.add(text)
        assert terms == analyzer.terms(text)  # the builder gives the index the same terms
        for t in terms:
            vocab.setdefault(t, len(vocab))
    arrays = builder.finish(lambda ts: np.array([vocab[t] for t in ts], np.int64))
    return Layouts(arrays), vocab


def test_stored_layout_equals_the_computed_one_on_hostile_text(analyzer):
    layouts, vocab = _stored(HOSTILE, analyzer)
    every_term = {number: term for term, number in vocab.items()}
    for doc, text in enumerate(HOSTILE):
        expected = Layouts.compute(text, analyzer, vocab)
        assert layouts.sentences(doc, text, every_term) == expected, text[:60]
        # and it is what passage_layout says, sentence by sentence
        sentences, spans = passage_layout(text, analyzer)
        assert [(s, e) for s, e, _ in expected] == [(s, e) for s, e, _, _ in sentences]
        assert sum(len(m) for _, _, m in expected) == len(spans)


def test_stored_layout_narrows_to_the_question_terms(analyzer):
    layouts, vocab = _stored(HOSTILE[:2], analyzer)
    wanted = {vocab["rate"]: "rate", vocab["hold"]: "hold"}
    got = layouts.sentences(0, HOSTILE[0], wanted)
    assert got == Layouts.compute(HOSTILE[0], analyzer, {"rate", "hold"})
    first, second = got
    assert [HOSTILE[0][first[0] + a : first[0] + b] for a, b, _ in first[2]] == ["rates"]
    assert [t for _, _, t in second[2]] == ["hold"]


def test_a_layout_is_only_used_for_its_own_text(analyzer):
    layouts, vocab = _stored(HOSTILE[:2], analyzer)
    every_term = {n: t for t, n in vocab.items()}
    assert layouts.sentences(0, HOSTILE[0], every_term) is not None
    assert layouts.sentences(0, HOSTILE[1], every_term) is None  # another passage's text
    same_length = HOSTILE[0][:-1] + "?"
    assert layouts.sentences(0, same_length, every_term) is None  # same length, other text
    assert layouts.sentences(5, HOSTILE[0], every_term) is None  # no such passage


def _docs(texts):
    return [
        IndexDoc(i + 1, f"a{i // 3}", f"Title {i // 3}", text, None, f"h{i // 3}")
        for i, text in enumerate(texts)
    ]


def test_index_keeps_layouts_through_save_and_load(analyzer, tmp_path):
    texts = [t for t in HOSTILE if t.strip()] + ["Oil prices fell 3% on Tuesday. OPEC met in Vienna."]
    built = BM25Index.build(_docs(texts), analyzer)
    plain = BM25Index.build(_docs(texts), analyzer, layout=False)
    for name in ("term_ptr", "post_doc", "post_tf", "doc_len"):  # the layout changes nothing else
        assert np.array_equal(built._a[name], plain._a[name])
    built.save(tmp_path / "v1")
    loaded = BM25Index.load(tmp_path / "v1")
    numbers = loaded.term_numbers(["oil", "vienna", "opec", "nosuchterm"])
    assert sorted(numbers.values()) == ["oil", "opec", "vienna"]
    article, ordinal = divmod(len(texts) - 1, 3)
    got = loaded.passage_sentences(f"a{article}", ordinal, texts[-1], numbers)
    assert got == Layouts.compute(texts[-1], analyzer, {"oil", "opec", "vienna"})
    assert loaded.passage_sentences(f"a{article}", ordinal, "Other text", numbers) is None
    assert loaded.passage_sentences("no-such-article", 0, texts[0], numbers) is None
    assert BM25Index.load(tmp_path / "v1") is not None and plain._layouts is None


def test_index_serves_without_usable_layouts(analyzer, tmp_path):
    texts = [
        "Oil prices fell 3% on Tuesday. OPEC met in Vienna.",
        "The bank raised rates.",
        "The club signed a striker.",
        "Voters went to the polls.",
        "A storm closed the airport.",
    ]
    BM25Index.build(_docs(texts), analyzer).save(tmp_path / "v1")
    manifest = json.loads((tmp_path / "v1" / "layout.json").read_text())
    manifest["version"] = 999  # another layout version: ignored, the index still loads
    (tmp_path / "v1" / "layout.json").write_text(json.dumps(manifest))
    assert load_layout(tmp_path / "v1", 5) is None
    index = BM25Index.load(tmp_path / "v1")
    assert index._layouts is None
    assert index.passage_sentences("a0", 0, texts[0], index.term_numbers(["oil"])) is None
    assert index.search("oil prices").hits[0].article_id == "a0"
    manifest["version"] = 1
    (tmp_path / "v1" / "layout.json").write_text(json.dumps(manifest))
    assert load_layout(tmp_path / "v1", 5) is not None
    hi = np.load(tmp_path / "v1" / "lay_sen_hi.npy")
    hi[-1] = 10_000  # past the words: inconsistent
    np.save(tmp_path / "v1" / "lay_sen_hi.npy", hi)
    assert load_layout(tmp_path / "v1", 5) is None
    hi[-1] = len(np.load(tmp_path / "v1" / "lay_tok_term.npy"))
    np.save(tmp_path / "v1" / "lay_sen_hi.npy", hi)
    assert load_layout(tmp_path / "v1", 5) is not None
    ends = np.load(tmp_path / "v1" / "lay_tok_end.npy")
    ends[0] = 5_000  # a word past the end of every passage
    np.save(tmp_path / "v1" / "lay_tok_end.npy", ends)
    assert load_layout(tmp_path / "v1", 5) is None


@pytest.mark.parametrize(
    "question", ["how much did oil prices fall?", "who met in Vienna?", "when did OPEC meet?"]
)
def test_quotes_are_the_same_with_and_without_stored_layouts(analyzer, question):
    passages = [
        (0, "Oil prices fell 3% on Tuesday. OPEC ministers met in Vienna on Monday."),
        (1, "Saudi Arabia's oil minister, Ali al-Naimi, said prices would recover by spring."),
        (2, "Analysts at Barclays expected a cut of 1.5 million barrels a day."),
    ]
    layouts, vocab = _stored([t for _, t in passages], analyzer)
    query = build_query(question, analyzer)
    numbers = {vocab[t]: t for t in query.terms if t in vocab}

    def layout(ordinal, text):
        return layouts.sentences(ordinal, text, numbers)

    for centers in ([0], [1, 2], [2, 0]):
        with_layout = choose_quote(passages, centers, query, analyzer, layout=layout)
        without = choose_quote(passages, centers, query, analyzer)
        assert with_layout == without
        assert with_layout.excerpt.text


def test_layouts_survive_a_chunked_build_and_a_too_large_archive_keeps_none(analyzer):
    texts = [t for t in HOSTILE if t.strip()] + ["Oil prices fell 3% on Tuesday. OPEC met in Vienna."]
    whole = BM25Index.build(_docs(texts), analyzer)
    chunked = BM25Index.build(_docs(texts), analyzer, chunk_passages=2, word_cache=8)
    assert chunked._layout_arrays is not None and whole._layout_arrays is not None
    for name, values in whole._layout_arrays.items():
        assert np.array_equal(values, chunked._layout_arrays[name]), name
    words = int(whole._layout_arrays["lay_tok_ptr"][-1])
    capped = BM25Index.build(_docs(texts), analyzer, chunk_passages=2, layout_max_words=words - 1)
    assert capped._layouts is None and capped._layout_arrays is None
    for name in ("term_ptr", "post_doc", "post_w", "doc_len", "term_blob"):  # the same index otherwise
        assert np.array_equal(whole._a[name], capped._a[name]), name
    at_cap = BM25Index.build(_docs(texts), analyzer, layout_max_words=words)
    assert at_cap._layouts is not None


def test_layouts_read_ahead_are_checked_against_their_texts(analyzer):
    layouts, vocab = _stored(HOSTILE, analyzer)
    every_term = {number: term for term, number in vocab.items()}
    changed = HOSTILE[1].replace("Washington", "Baltimore")
    offered = [(doc, text) for doc, text in enumerate(HOSTILE) if doc != 1] + [(1, changed)]
    assert layouts.keep(offered) == len(HOSTILE) - 1  # the changed text's layout is not its own
    assert 1 not in layouts._checked and set(layouts._checked) == set(range(len(HOSTILE))) - {1}
    for doc, text in enumerate(HOSTILE):  # what was read ahead answers as reading it on first sight does
        assert layouts.sentences(doc, text, every_term) == Layouts.compute(text, analyzer, vocab)
    assert layouts.sentences(1, changed, every_term) is None


def test_a_layout_kept_in_memory_is_left_out_of_the_collectors_walks(analyzer):
    """What the quotes keep between questions is made of numbers, bytes and tuples of them: once it has survived
    collections the garbage collector stops walking it (a search process keeps thousands)."""
    layouts, _ = _stored(HOSTILE, analyzer)
    kept = [layouts._read(doc) for doc in range(len(HOSTILE))]
    gc.collect()
    gc.collect()
    assert not any(gc.is_tracked(found) for found in kept)

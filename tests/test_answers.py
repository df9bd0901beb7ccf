"""How answers are chosen: answer types, follow-up weights, spelling, quote windows and the no-answer verdict."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.analyze import Analyzer
from retrieval.answering import Candidate, verdict
from retrieval.index import Hit
from retrieval.question import CONTEXT_WEIGHT, AnswerType, answer_type, build_query
from retrieval.quote import choose_quote
from retrieval.service import NewsService
from retrieval.spelling import Speller
from tests.bot_harness import corpus_file

pytestmark = pytest.mark.both_stores  # the archive's tests run on SQLite and on PostgreSQL

AN = Analyzer()


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("how many jobs will go?", AnswerType.QUANTITY),
        ("What percentage of voters turned out", AnswerType.QUANTITY),
        ("when did the bridge open", AnswerType.DATE),
        ("in what year was it built?", AnswerType.DATE),
        ("who surrounded Manbij?", AnswerType.PERSON),
        ("which actor plays the villain", AnswerType.PERSON),
        ("where's the new factory", AnswerType.PLACE),
        ("which city hosts the final", AnswerType.PLACE),
        ("why did the strike end", AnswerType.REASON),
        ("what colour is the new logo", AnswerType.NAME),
        ("rail strike weekend", AnswerType.OTHER),
    ],
)
def test_answer_type_comes_from_the_question_words(question, kind):
    assert answer_type(question) is kind


def test_a_follow_up_leads_with_its_own_words_and_keeps_the_context_lighter():
    query = build_query("what share of civilians escaped?", AN, context=["the offensive to take Manbij"])
    assert query.terms["civilian"] == 1.0 and query.terms["escap"] == 1.0
    assert query.terms["manbij"] == pytest.approx(CONTEXT_WEIGHT)
    assert "manbij" not in query.own and query.is_follow_up
    assert query.kind is AnswerType.QUANTITY  # from the follow-up's own wording ("what share")


def test_the_word_after_how_is_not_a_search_term():
    assert "much" not in build_query("how much did the repairs cost", AN).terms
    assert "mani" not in build_query("how many floors does it have", AN).terms


def test_context_never_outweighs_a_word_the_question_repeats():
    query = build_query("how old is manbij", AN, context=["manbij offensive"])
    assert query.terms["manbij"] == 1.0


def _speller(words: dict[str, int]) -> Speller:
    vocabulary = sorted(words)
    return Speller(vocabulary, np.array([words[w] for w in vocabulary]))


def test_spelling_corrects_one_edit_and_a_swapped_pair_of_letters():
    speller = _speller({"kuznetsova": 12, "ranieri": 8, "valencia": 30, "2002": 50, "mansion": 3})
    assert speller.correct("kuznetsva") == "kuznetsova"
    assert speller.correct("raneiri") == "ranieri"  # two letters swapped: one edit


def test_spelling_leaves_numbers_short_words_and_strangers_alone():
    speller = _speller({"2002": 50, "cat": 40, "kuznetsova": 12, "mansion": 3, "typo": 1})
    assert speller.correct("2022") is None  # a year is not a typo of another year
    assert speller.correct("cot") is None  # too short to tell a typo from another word
    assert speller.correct("qatar") is None  # nothing near enough
    assert speller.correct("typos") is None  # a word of one passage is no correction


def test_spelling_measures_only_words_that_could_be_near_and_finds_what_measuring_all_would():
    import random

    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz\u00e9\u00fc"
    words = {
        "".join(rng.choice(letters[:8]) for _ in range(rng.randint(4, 10))): rng.randint(2, 40)
        for _ in range(3000)
    }
    speller = _speller(words)

    def measuring_all(term: str) -> str | None:  # the rule without the letter test
        limit = 2 if len(term) >= 7 else 1
        near = [w for w in words if abs(len(w) - len(term)) <= limit]
        near.sort(key=lambda w: (len(w), w))  # the speller's order: by length, then the vocabulary's
        matches = process.extract(term, near, scorer=OSA.distance, score_cutoff=limit, limit=20)
        if not matches:
            return None
        best = min(d for _, d, _ in matches)
        ranked = sorted(
            (m for m, d, _ in matches if d == best), key=lambda m: (m[0] != term[0], -words[m], m)
        )
        return ranked[0]

    corrected = 0
    for word in rng.sample(sorted(words), 300):
        i = rng.randrange(len(word))
        typo = (
            word[:i] + rng.choice(letters) + word[i + 1 :] if rng.random() < 0.5 else word[:i] + word[i + 1 :]
        )
        if typo in words or len(typo) < 4:
            continue
        expected = measuring_all(typo)
        assert speller.correct(typo) == expected, typo
        corrected += expected is not None
    assert corrected > 100


def test_the_quote_reaches_into_the_next_passage_for_the_figure_asked_for():
    passages = [
        (0, "The harbour wind farm was approved by the council on Monday after a long inquiry."),
        (1, "Fishing crews had objected. It will have 40 turbines and power 90,000 homes."),
    ]
    query = build_query("how many turbines will the harbour wind farm have?", AN)
    quote = choose_quote(passages, [0], query, AN)
    assert "40 turbines" in quote.excerpt.text
    marked = [quote.excerpt.text[s:e] for s, e in quote.excerpt.spans]
    assert "turbines" in marked


def test_a_quote_across_two_passages_keeps_the_paragraph_break():
    passages = [(0, "The bridge over the Lark was opened on Saturday."), (1, "It cost 3 million pounds.")]
    quote = choose_quote(
        passages, [0], build_query("how much did the Lark bridge cost", AN), AN, max_chars=350
    )
    assert quote.excerpt.text == "The bridge over the Lark was opened on Saturday.\nIt cost 3 million pounds."
    assert quote.ordinal == 0


def test_a_who_question_prefers_the_sentence_with_a_new_name():
    passages = [
        (
            0,
            "Valencia have sacked their coach after eight months in charge. "
            "Former assistant Antonio Lopez will take over as the new coach.",
        )
    ]
    quote = choose_quote(passages, [0], build_query("who is taking over at valencia", AN), AN, max_chars=80)
    assert "Antonio Lopez" in quote.excerpt.text


def _candidate(present: set[str]) -> Candidate:
    return Candidate(hit=Hit(1, "a", 1.0, 1.0), score=1.0, present=present)


def _idf(values: dict[str, float]):
    return lambda term: values.get(term, 0.0)


def test_a_word_the_archive_never_saw_decides_only_in_a_large_archive():
    query = build_query("who won the world cup in qatar", AN)
    idf = _idf({"won": 1.0, "world": 1.0, "cup": 2.0})
    candidates = [_candidate({"won", "world", "cup"})]
    large = verdict(query, idf, ["qatar"], candidates, archive_passages=50_000)
    small = verdict(query, idf, ["qatar"], candidates, archive_passages=40)
    assert large.no_match is True and "qatar" in large.distinctive
    assert small.no_match is False


def test_no_answer_when_every_top_article_lacks_the_rarest_term_and_much_of_the_weight():
    query = build_query("what did donald trump say about nato", AN)
    idf = _idf({"donald": 5.0, "trump": 6.0, "say": 1.0, "nato": 6.5})
    half_each = [_candidate({"donald", "say"}), _candidate({"nato"})]
    assert verdict(query, idf, [], half_each).no_match is True
    assert verdict(query, idf, [], [_candidate({"donald", "trump", "nato", "say"})]).no_match is False


@pytest.fixture
def archive(store_target, tmp_path, sample_corpus):
    corpus_file(
        sample_corpus,
        "local/manager.txt",
        "Manager Apologises For Offensive Chant",
        "The football manager said the chant was offensive and apologised to the fans on Saturday.",
    )
    service = NewsService(store_target, sample_corpus, index_cache=tmp_path / "index-cache")
    service.reload()
    yield service
    service.close()


def test_a_follow_up_is_answered_from_the_article_of_its_context(archive):
    alone_with_context = archive.search(
        "what share of civilians managed to escape?", context=["the SDF offensive to take Manbij"], k=2
    )
    top = alone_with_context.results[0]
    assert top.article_id == "000_7259aed06ac303ba"
    assert "80 percent" in top.excerpt.text.split("\n\u2026")[0]  # the first quote, not a second one
    assert alone_with_context.context == ("the SDF offensive to take Manbij",)


def test_a_misspelt_word_is_corrected_and_the_correction_reported(archive):
    answer = archive.search("how much did the riverside libary repairs cost", k=2)
    assert answer.corrections == [("libary", "library")]
    assert (
        answer.results[0].title.startswith("Riverside Library")
        and "3.2 million" in answer.results[0].excerpt.text
    )


def test_results_list_the_distinctive_words_they_lack(archive):
    answer = archive.search("how much did the riverside library repairs cost in qatar", k=2)
    assert answer.results[0].missing == ("qatar",)
    assert answer.to_json()["results"][0]["missing"] == ["qatar"]


def test_one_result_per_article(archive):
    answer = archive.search("Manbij civilians SDF ISIS", k=5)
    ids = [r.article_id for r in answer.results]
    assert len(ids) == len(set(ids))


def test_a_year_counts_as_held_by_an_article_published_in_it(archive):
    answer = archive.search("who surrounded Manbij in 2016?", k=1)
    assert answer.results[0].article_id == "000_7259aed06ac303ba" and answer.results[0].missing == ()
    assert archive.search("who surrounded Manbij in 2019?", k=1).results[0].missing == ("2019",)


def test_answer_shapes_match_as_the_plain_word_lists_would():
    import itertools
    import re

    from retrieval import quote

    plain = {
        quote._QUANTITY: quote._QUANTITY.pattern.replace(
            quote._trie(quote._NUMBER_WORDS), quote._NUMBER_WORDS
        ),
        quote._DATE: quote._DATE.pattern.replace(quote._trie(quote._MONTHS), quote._MONTHS).replace(
            quote._trie(quote._DAYS), quote._DAYS
        ),
        quote._REASON: quote._REASON.pattern,
    }
    words = (quote._NUMBER_WORDS + "|" + quote._MONTHS + "|" + quote._DAYS).split("|")
    pieces = [
        *words,
        *(w.upper() for w in words),
        *(w.title() for w in words),
        "sixtyish",
        "mayor",
        "Marching",
    ]
    pieces += [
        "\u017fix",
        "\u212aelvin",
        "sept.",
        "5",
        "1987",
        "$4bn",
        "40%",
        "-",
        "per cent",
        "this week",
        ",",
        "Because",
        "due to",
        "OWING",
        "blamed",
        "Earlier this",
    ]
    texts = [" ".join(p) for p in itertools.islice(itertools.permutations(pieces, 3), 0, None, 499)]
    texts += ["".join(p) for p in itertools.islice(itertools.permutations(pieces, 2), 0, None, 13)]
    texts += [
        "Sixty-six jobs went on 5 Jan and twenty-one more in Sept. 12; the other half stayed until Tuesday."
    ]
    assert quote._QUANTITY.pattern != plain[quote._QUANTITY]  # the lists really were rewritten
    assert quote._DATE.pattern != plain[quote._DATE]
    assert any(not t.isascii() for t in texts) and any(t.isascii() and t != t.lower() for t in texts)
    for compiled, original in plain.items():
        slow = re.compile(original, re.IGNORECASE)
        for text in texts:
            assert compiled.spans(text) == [m.span() for m in slow.finditer(text)], text


def test_names_are_found_as_the_plain_pattern_finds_them():
    import re

    from retrieval import quote

    word = r"(?:[A-Z][\w'\u2019-]*[a-z][\w'\u2019-]*|[A-Z]{2,}|[A-Z]\.)"
    plain = re.compile(
        word + r"(?:\s+(?:(?:de|van|von|der|den|di|da|du|del|le|la|al|bin|of|and)\s+)?" + word + r")*"
    )
    texts = [
        "Ludwig van Beethoven met U.S. officials of IBM and McDonald's in the Bank of England.",
        "The iPhone's maker, Apple Inc., said O'Neill and A. B. Smith-Jones left EU-backed talks.",
        "NASA, the U.N. and Mr Mc. X-Ray; ÉCOLE Zürich AB CD ef Gh",
    ]
    for text in texts:
        assert [(m.span(), m.group()) for m in quote._NAME.finditer(text)] == [
            (m.span(), m.group()) for m in plain.finditer(text)
        ], text


def test_equally_rare_distinctive_words_come_in_a_fixed_order():
    from retrieval.answering import distinctive_terms

    query = build_query("kung fu panda zebra", Analyzer())
    words = distinctive_terms(query, lambda t: 5.0, [])
    assert words == sorted(words) and len(words) == len(set(query.own))

import pytest

from retrieval.analyze import SUPPORTED_LANGUAGES, Analyzer


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


def test_stems_casefolds_and_drops_stopwords(analyzer):
    assert analyzer.terms("The Ministers were RUNNING to the meetings") == ["minist", "run", "meet"]


def test_accents_fold(analyzer):
    assert analyzer.terms("Café naïve Zürich") == analyzer.terms("cafe naive zurich")


def test_numbers_amounts_and_percentages_stay_findable(analyzer):
    terms = analyzer.terms("Profits rose 4.75% to $40bn in 2016, up from 1,000 jobs")
    for expected in ("4.75%", "4.75", "40bn", "40", "2016", "1000"):
        assert expected in terms


def test_hyphenated_names_give_parts_and_whole(analyzer):
    terms = analyzer.terms("US-backed forces")
    assert "us-back" in terms and "back" in terms
    assert set(analyzer.terms("a US-backed plan")) >= {"us-back"}


def test_capital_us_and_acronyms_survive_stopwords(analyzer):
    assert analyzer.terms("the US economy") == ["us", "economi"]
    assert analyzer.terms("the U.S. economy") == ["us", "economi"]
    assert analyzer.terms("tell us more") == ["tell"]


def test_arabic_and_persian_script(analyzer):
    arabic = Analyzer("arabic")
    assert arabic.terms("كتاب") == arabic.terms("کتاب")  # Arabic kaf folds to the Persian letter
    assert arabic.terms("عَرَبِيّ") == arabic.terms("عربي")  # diacritics dropped
    persian = Analyzer("persian")
    terms = persian.terms("می\u200cخواهم ۲۰۱۶")
    assert terms == persian.terms("میخواهم 2016")
    assert terms[-1] == "2016" and len(terms) == 2


def test_term_spans_point_at_words(analyzer):
    text = "Oil prices fell 3% after the U.S.-Iran talks."
    spans = analyzer.term_spans(text)
    assert [t for _, _, t in spans] == analyzer.terms(text)
    for start, end, _ in spans:
        assert text[start:end].strip() == text[start:end]
        assert analyzer.terms(text[start:end])  # each span holds a word that analyzes
    assert ("fell", "fell") in {(text[s:e], t) for s, e, t in spans}


def test_same_terms_for_questions_and_passages(analyzer):
    assert set(analyzer.terms("Who backed the rebels?")) <= set(analyzer.terms("The US backed the rebels."))


def test_unknown_language_names_supported_ones():
    with pytest.raises(ValueError, match="english"):
        Analyzer("klingon")
    assert "english" in SUPPORTED_LANGUAGES


def test_empty_and_punctuation(analyzer):
    assert analyzer.terms("") == []
    assert analyzer.terms("?!... -- ''") == []
    assert analyzer.term_spans("") == []


HOSTILE_TEXTS = [
    "Oil prices fell 3% after the U.S.-Iran talks.",
    "  leading and trailing whitespace\t\n",
    "no\u00a0break\u2009thin\u3000ideographic\x1cfile-separator words",
    "the the the the repeated repeated chunk the",
    "Caf\u00e9 na\u0308ive Z\u00fcrich \u00c5ngstr\u00f6m",
    "$40bn \u00a34.6bn 4.75% 1,000 2,500.50 e.g. U.S. a.m. No. 10",
    "\u0643\u062a\u0627\u0628 \u0639\u064e\u0631\u064e\u0628\u0650\u064a\u0651 \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u06f2\u06f0\u06f1\u06f6",
    "US-backed\u2010hyphens\u2011everywhere -- - ' \u2019 rock\u2019n\u2019roll",
    "&amp; &#8220;quoted&#8221; <b>tags</b> (brackets) [1]",
    "x" * 3000 + " tail",
    "",
    " ",
    "emoji \U0001f600 mixed\U0001f600text",
]


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_term_spans_equal_a_scan_token_by_token(analyzer, text):
    """Spans computed per whitespace chunk (and cached) are those of scanning the whole text."""
    from retrieval.analyze import _TOKEN

    expected = [
        (m.start() + s, m.start() + e, t)
        for m in _TOKEN.finditer(text)
        for s, e, t in Analyzer()._analyze_token(m.group())
    ]
    assert analyzer.term_spans(text) == expected
    assert analyzer.term_spans(text) == expected  # again, from the cache
    assert [t for _, _, t in expected] == analyzer.terms(text)

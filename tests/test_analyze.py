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

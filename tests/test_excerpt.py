import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.analyze import Analyzer
from retrieval.excerpt import ELLIPSIS, choose_excerpt

AN = Analyzer()

PASSAGE = (
    "The Panthers finished the regular season with a 15-1 record. Quarterback Cam Newton was named "
    "the NFL Most Valuable Player (MVP). They defeated the Arizona Cardinals 49-15 in the NFC "
    "Championship Game. The franchise was founded in 1995 by Jerry Richardson. The Broncos finished "
    "the regular season with a 12-4 record."
)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Who was named the Most Valuable Player?", "Cam Newton"),
        ("When was the franchise founded?", "1995"),
        ("What record did the Broncos finish with?", "12-4"),
        ("Which team did the Panthers defeat in the NFC Championship?", "Arizona Cardinals"),
    ],
)
def test_quotes_the_answer_sentence(question, answer):
    excerpt = choose_excerpt(PASSAGE, question, AN)
    assert answer in excerpt.text
    assert len(excerpt.text) <= 301
    assert PASSAGE[excerpt.start :].startswith(excerpt.text.lstrip(ELLIPSIS).rstrip(ELLIPSIS))


def test_prefers_numbers_for_how_many():
    text = (
        "The company hired many new engineers in Berlin. "
        "It now employs 4,500 engineers across Europe. "
        "Engineers in Berlin praised the new office."
    )
    excerpt = choose_excerpt(text, "How many engineers does the company employ?", AN)
    assert "4,500" in excerpt.text


def test_spans_point_at_matched_words():
    excerpt = choose_excerpt(PASSAGE, "When was the franchise founded by Richardson?", AN)
    marked = [excerpt.text[s:e] for s, e in excerpt.spans]
    assert marked == ["franchise", "founded", "Richardson"]
    assert excerpt.spans == sorted(excerpt.spans)
    assert all(a[1] <= b[0] for a, b in zip(excerpt.spans, excerpt.spans[1:], strict=False))


def test_idf_weights_rare_terms():
    text = "The minister spoke. The minister spoke about the Zanzibar treaty."
    excerpt = choose_excerpt(text, "minister Zanzibar", AN, idf=lambda t: 5.0 if t == "zanzibar" else 0.1)
    assert "Zanzibar" in excerpt.text


def test_long_sentence_is_cut_at_word_boundaries_with_ellipsis():
    words = " ".join(f"word{i}" for i in range(200))
    text = f"{words} the treaty was signed in Geneva {words}."
    excerpt = choose_excerpt(text, "Where was the treaty signed?", AN, max_chars=120)
    assert len(excerpt.text) <= 121
    assert excerpt.text.startswith(ELLIPSIS) and excerpt.text.endswith(ELLIPSIS)
    assert "treaty was signed in Geneva" in excerpt.text
    body = excerpt.text.strip(ELLIPSIS)
    assert text[excerpt.start : excerpt.start + len(body)] == body
    assert body.split()[0] in text.split() and body.split()[-1] in text.split()
    marked = {excerpt.text[s:e] for s, e in excerpt.spans}
    assert {"treaty", "signed"} <= marked


def test_length_cap_on_long_passages():
    text = " ".join(["Talks on the budget resumed in Brussels on Monday."] * 30)
    for cap in (40, 120, 300):
        excerpt = choose_excerpt(text, "budget talks Brussels", AN, max_chars=cap)
        assert 0 < len(excerpt.text) <= cap + 1


def test_empty_inputs():
    assert choose_excerpt("", "anything", AN).text == ""
    excerpt = choose_excerpt("Just one sentence here.", "", AN)
    assert excerpt.text == "Just one sentence here." and excerpt.spans == []


@settings(max_examples=200, deadline=None)
@given(
    passage=st.text(max_size=700),
    question=st.text(max_size=80),
    max_chars=st.integers(min_value=1, max_value=400),
)
def test_never_raises_and_respects_the_cap(passage, question, max_chars):
    excerpt = choose_excerpt(passage, question, AN, max_chars=max_chars)
    assert len(excerpt.text) <= max_chars + 1
    for s, e in excerpt.spans:
        assert 0 <= s < e <= len(excerpt.text)
    assert excerpt.spans == sorted(excerpt.spans)


@settings(max_examples=100, deadline=None)
@given(
    sentences=st.lists(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=120), max_size=8),
    question=st.text(max_size=60),
)
def test_never_raises_on_sentence_like_text(sentences, question):
    passage = ". ".join(sentences)
    excerpt = choose_excerpt(passage, question, AN, idf=lambda t: float(len(t)))
    assert len(excerpt.text) <= 301

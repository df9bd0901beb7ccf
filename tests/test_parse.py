"""Parsing corpus files into articles: the seed, the BBC set, JSON records, hostile input."""

from __future__ import annotations

import gzip
import json
import re
import tarfile
import time
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.models import Article, ParseResult
from retrieval.parse import SUPPORTED_EXTENSIONS, decode_text, parse_file
from retrieval.parse.dates import parse_date, parse_date_value
from retrieval.parse.scraped import parse_related
from tests.data import BBC_JSONL, BBC_TAR, SEED, need

SEED_TITLE = "ISIS Stronghold Fled Civilians Surrounded by US-Backed Forces"
SEED_RELATED_IDS = [
    "1829953", "1829975", "1829995", "1830137", "1830140", "1830150", "1830156",
    "1830171", "1830184", "1830188", "1830238", "1830487", "1830488", "1830493",
]  # fmt: skip
SEED_RELATED_DATES = ["2016-06-19"] * 3 + ["2016-06-20"] * 8 + ["2016-06-21"] * 3


@cache
def seed_bytes() -> bytes:
    return SEED.read_bytes()


def one(result: ParseResult) -> Article:
    assert result.refusals == []
    assert len(result.articles) == 1
    return result.articles[0]


@cache
def seed_article() -> Article:
    return one(parse_file("000_7259aed06ac303ba.txt", seed_bytes()))


def seed_variant(old: bytes, new: bytes) -> bytes:
    data = seed_bytes()
    assert old in data
    return data.replace(old, new, 1)


# ---------------------------------------------------------------- the seed file


def test_seed_fields():
    a = seed_article()
    assert a.id == "000_7259aed06ac303ba"
    assert a.source == "000_7259aed06ac303ba.txt"
    assert a.title == SEED_TITLE
    assert a.published == "2016-06-21T12:02:16"
    assert a.url is None
    assert a.category is None


def test_seed_body_is_clean():
    a = seed_article()
    assert a.body.startswith("Growing numbers of civilians are fleeing the ISIS stronghold of Manbij")
    assert a.body.endswith("the refugee added, RT reported.")
    assert len(a.paragraphs) == 10
    assert a.body == "\n\n".join(a.paragraphs)
    for trace in ("string(", "contenttypeid", "alalam", "[{", "Tue Jun 21", SEED_TITLE):
        assert trace not in a.body
    assert "the SDF \u2013 which includes the Kurdish YPG militia \u2013 continues" in a.body
    assert "\u201cISIS cruelty.\u201d" in a.body


def test_seed_related_items():
    related = seed_article().related
    assert [r.id for r in related] == SEED_RELATED_IDS
    assert [r.published for r in related] == SEED_RELATED_DATES
    assert related[0].title == "Sniper Takes out Two ISIS Car Bombers with a Single Shot"
    assert related[7].title == "Over 350 Izadi Women Rescued from ISIS in Iraq\u2019s Fallujah"
    assert related[13].title.startswith("PICS: Fresh Troops Join Syrian Army in Homs")


# ---------------------------------------------------------------- tolerances of the scraped layout


def test_crlf_and_bom_give_the_same_article():
    data = b"\xef\xbb\xbf" + seed_bytes().replace(b"\n", b"\r\n")
    a = one(parse_file("000_7259aed06ac303ba.txt", data))
    ref = seed_article()
    assert (a.title, a.body, a.published, a.related) == (ref.title, ref.body, ref.published, ref.related)
    assert "\r" not in a.body and "\ufeff" not in a.title


def test_old_mac_line_ends():
    a = one(parse_file("x.txt", seed_bytes().replace(b"\n", b"\r")))
    assert a.body == seed_article().body
    assert len(a.related) == 14


def test_windows_1252_bytes():
    data = (
        b"Pound falls \x96 again\n\nPound falls \x96 again\nTue Jun 21, 2016 12:02:16\n\n"
        b"The pound fell to \xa3100 after the \x93shock\x94 vote.\n\nTraders weren\x92t surprised."
    )
    a = one(parse_file("x.txt", data))
    assert a.title == "Pound falls \u2013 again"
    assert a.published == "2016-06-21T12:02:16"
    assert (
        a.body
        == "The pound fell to \u00a3100 after the \u201cshock\u201d vote.\n\nTraders weren\u2019t surprised."
    )


def test_html_entities_are_unescaped():
    data = seed_variant(SEED_TITLE.encode(), b"Tom &amp; Jerry&#8217;s &quot;Day&quot;")
    data = data.replace(SEED_TITLE.encode(), b"Tom &amp; Jerry&#8217;s &quot;Day&quot;", 1)
    data = data.replace(b"Growing numbers", b"Growing &amp; growing numbers", 1)
    data = data.replace(b"Sniper Takes out", b"Sniper&#8217;s &quot;Shot&quot; &amp; more", 1)
    a = one(parse_file("x.txt", data))
    assert a.title == 'Tom & Jerry\u2019s "Day"'
    assert a.body.startswith("Growing & growing numbers")
    assert "&amp;" not in a.body
    assert a.related[0].title == 'Sniper\u2019s "Shot" & more Two ISIS Car Bombers with a Single Shot'
    assert a.published == "2016-06-21T12:02:16"  # the repeated title was recognised


@pytest.mark.parametrize("count", [b"string(99)", b"string(999999)", b"string(0)"])
def test_wrong_dump_byte_count(count):
    a = one(parse_file("x.txt", seed_variant(b"string(2748)", count)))
    assert [r.id for r in a.related] == SEED_RELATED_IDS
    assert a.body == seed_article().body


def _dump_offset() -> int:
    return seed_bytes().index(b"string(2748)")


@pytest.mark.parametrize("fraction", [i / 40 for i in range(40)])
def test_truncated_dump(fraction):
    data = seed_bytes()
    start = _dump_offset()
    cut = start + int((len(data) - start) * fraction)
    a = one(parse_file("x.txt", data[:cut]))
    ref = seed_article()
    assert a.body == ref.body
    assert a.title == ref.title and a.published == ref.published
    # the items that survive are the first ones, with complete titles
    assert a.related == ref.related[: len(a.related)]
    complete_titles = len(re.findall(rb'"title":"[^"]*"', data[start:cut]))
    assert len(a.related) == complete_titles


def test_truncated_dump_recovers_an_item_cut_after_its_title():
    data = seed_bytes()
    cut = data.index(b"Single Shot") + len(b'Single Shot"')
    a = one(parse_file("x.txt", data[:cut]))
    assert [r.id for r in a.related] == ["1829953"]
    assert a.related[0].published == "2016-06-19"


def test_truncated_just_after_string_keyword():
    for end in (b"\n\n\n\nstrin", b"\n\n\n\nstring(27", b'\n\n\n\nstring(2748) "'):
        data = seed_bytes()[: _dump_offset() - 4] + end
        a = one(parse_file("x.txt", data))
        assert a.body == seed_article().body
        assert a.related == []


def test_missing_date_line():
    a = one(parse_file("x.txt", seed_variant(b"Tue Jun 21, 2016 12:02:16\n", b"")))
    assert a.published is None
    assert a.title == SEED_TITLE
    assert a.body == seed_article().body
    assert len(a.related) == 14


def test_title_not_repeated():
    data = seed_variant(SEED_TITLE.encode() + b"\nTue", b"Tue")
    a = one(parse_file("x.txt", data))
    assert a.title == SEED_TITLE
    assert a.published == "2016-06-21T12:02:16"
    assert a.body == seed_article().body


def test_no_dump_at_all():
    data = seed_bytes()[: _dump_offset()]
    a = one(parse_file("x.txt", data))
    assert a.body == seed_article().body
    assert a.related == []
    assert a.published == "2016-06-21T12:02:16"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2016-06-21", "2016-06-21"),
        ("2016-06-21 12:02", "2016-06-21T12:02:00"),
        ("2016-06-21T12:02:16Z", "2016-06-21T12:02:16"),
        ("June 21, 2016", "2016-06-21"),
        ("21 June 2016", "2016-06-21"),
        ("Tue, 21 Jun 2016 12:02:16 GMT", "2016-06-21T12:02:16"),
        ("21/06/2016", "2016-06-21"),
        ("Tuesday, June 21, 2016 3:05 PM", "2016-06-21T15:05:00"),
        ("Published: 21 Jun 2016", "2016-06-21"),
    ],
)
def test_other_date_line_formats(line, expected):
    a = one(parse_file("x.txt", seed_variant(b"Tue Jun 21, 2016 12:02:16", line.encode())))
    assert a.published == expected
    assert a.body == seed_article().body


def test_url_line_becomes_url():
    data = seed_variant(
        b"Tue Jun 21, 2016 12:02:16\n", b"Tue Jun 21, 2016 12:02:16\nURL: https://example.com/a?b=1\n"
    )
    a = one(parse_file("x.txt", data))
    assert a.url == "https://example.com/a?b=1"
    assert "example.com" not in a.body
    assert a.published == "2016-06-21T12:02:16"


def test_body_sentences_are_not_dates():
    data = b"Army advances\n\nOn June 21, 2016 the army entered the town.\n\n21 June 2016 was a Tuesday, said one man."
    a = one(parse_file("x.txt", data))
    assert a.published is None
    assert len(a.paragraphs) == 2
    assert a.paragraphs[0].startswith("On June 21, 2016")


def test_parse_related_alone():
    dump = 'string(5) "[{"id":7,"title":"A &amp; B","pic":"/2019/02/30/x.jpg"} ,{"id":"8","title":"C","date":"2020-01-02"} ]"'
    items = parse_related(dump)
    assert [(r.id, r.title, r.published) for r in items] == [("7", "A & B", None), ("8", "C", "2020-01-02")]


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "text",
    ["", "2016", "Growing numbers of civilians", "The vote on June 21, 2016 was close", "12:02", "99/99/2016",
     "Feb 30, 2016", "Then 21 June 2016 came"],
)  # fmt: skip
def test_not_dates(text):
    assert parse_date(text) is None


def test_date_values():
    assert parse_date_value(1466510536) == "2016-06-21T12:02:16"
    assert parse_date_value(1466510536000) == "2016-06-21T12:02:16"
    assert parse_date_value("1466510536") == "2016-06-21T12:02:16"
    assert parse_date_value("2016-06-21T12:02:16.5+02:00") == "2016-06-21T12:02:16"
    assert parse_date_value(float("nan")) is None
    assert parse_date_value(10**40) is None
    assert parse_date_value(True) is None
    assert parse_date_value({"$date": "2016-06-21"}) == "2016-06-21"


# ---------------------------------------------------------------- decoding


def test_decode_text():
    assert decode_text(b"\xef\xbb\xbfa\r\nb\rc\n") == "a\nb\nc\n"
    assert decode_text("Cafe\u0301".encode()) == "Caf\u00e9"
    assert decode_text(b"\xa3 5 \x93q\x94") == "\u00a3 5 \u201cq\u201d"
    assert decode_text("caf\u00e9 \u2013 \u00a3".encode()) == "caf\u00e9 \u2013 \u00a3"
    assert decode_text("\ufeffTitle\n\nBody".encode("utf-16")) == "Title\n\nBody"


def test_supported_extensions():
    for ext in (".txt", ".text", ".md", ".json", ".jsonl", ".ndjson"):
        assert ext in SUPPORTED_EXTENSIONS


# ---------------------------------------------------------------- plain text (BBC)


@cache
def bbc_raw() -> dict[str, bytes]:
    with tarfile.open(need(BBC_TAR)) as tar:
        return {
            m.name.removeprefix("bbc/"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar
            if m.isfile() and m.name.endswith(".txt") and m.name.count("/") == 2
        }


@cache
def bbc_articles() -> dict[str, Article]:
    out = {}
    for name, data in bbc_raw().items():
        out[name] = one(parse_file(name, data))
    return out


@pytest.mark.shared_corpus
def test_bbc_all_parse_fast_without_refusals():
    raw = bbc_raw()
    assert len(raw) == 2225
    started = time.perf_counter()
    results = [parse_file(name, data) for name, data in raw.items()]
    elapsed = time.perf_counter() - started
    assert sum(len(r.refusals) for r in results) == 0
    assert sum(len(r.articles) for r in results) == 2225
    assert elapsed < 5
    articles = [r.articles[0] for r in results]
    assert sum(len(a.paragraphs) for a in articles) == 10547
    assert len({a.content_hash for a in articles}) == 2225 - 98
    assert all(a.published is None and a.url is None and a.related == [] for a in articles)


@pytest.mark.shared_corpus
def test_bbc_fields():
    a = bbc_articles()["business/001.txt"]
    assert a.id == "business/001"
    assert a.source == "business/001.txt"
    assert a.category == "business"
    assert a.title == "Ad sales boost Time Warner profit"
    assert a.body.startswith("Quarterly profits at US media giant TimeWarner jumped 76% to $1.13bn")


@pytest.mark.shared_corpus
def test_bbc_windows_1252_file():
    a = bbc_articles()["sport/199.txt"]
    assert "\u00a3" in a.body
    assert "\ufffd" not in a.body


@pytest.mark.shared_corpus
def test_bbc_single_line_breaks_are_joined():
    a = bbc_articles()["business/020.txt"]
    assert all("\n" not in p for p in a.paragraphs)
    assert 'core function", - they are worried' in a.body


@pytest.mark.shared_corpus
def test_bbc_text_and_jsonl_agree():
    result = parse_file("bbc.jsonl.gz", need(BBC_JSONL).read_bytes())
    assert result.refusals == []
    from_jsonl = {a.id: a for a in result.articles}
    assert len(from_jsonl) == 2225
    for a in bbc_articles().values():
        b = from_jsonl[a.id]
        assert (b.title, b.body, b.category) == (a.title, a.body, a.category)


def test_title_line_without_blank_line():
    a = one(parse_file("x.txt", b"Headline here\nFirst paragraph.\n\nSecond paragraph."))
    assert a.title == "Headline here"
    assert a.paragraphs == ["First paragraph.", "Second paragraph."]


def test_lines_without_blank_lines_are_paragraphs():
    a = one(parse_file("x.txt", b"Title\n\nOne paragraph here.\nAnother one.\nA third."))
    assert a.paragraphs == ["One paragraph here.", "Another one.", "A third."]
    lines = [
        "Markets fell sharply on Monday as investors weighed the",
        "prospect of higher interest rates in the United States and",
        "a slowdown in China, traders said. The index closed down",
        "two percent, its worst day in a month.",
    ]
    wrapped = one(parse_file("x.txt", ("Title\n\n" + "\n".join(lines)).encode()))
    assert wrapped.paragraphs == [" ".join(lines)]


def test_markdown_heading_and_front_matter():
    a = one(parse_file("notes/x.md", b"# A heading\n\nSome text here."))
    assert a.title == "A heading"
    assert a.category == "notes"
    fm = b"---\ntitle: Front matter title\ndate: 2020-05-01\nurl: https://example.org/p\n---\nBody text here."
    b = one(parse_file("x.md", fm))
    assert (b.title, b.published, b.url, b.body) == (
        "Front matter title",
        "2020-05-01",
        "https://example.org/p",
        "Body text here.",
    )


def test_numeric_folder_is_not_a_category():
    assert one(parse_file("2016/06/x.txt", b"T\n\nBody.")).category is None
    assert one(parse_file("x.txt", b"T\n\nBody.")).category is None


def test_long_first_line_is_not_a_title():
    para = "This is a very long opening paragraph without any title above it. " * 8
    a = one(parse_file("x.txt", para.encode()))
    assert a.body == para.strip()
    assert a.title == "This is a very long opening paragraph without any title above it."


# ---------------------------------------------------------------- JSON and JSON Lines


def test_json_list_with_varied_field_names():
    records = [
        {"headline": "One", "content": "Para one.\n\nPara two.", "link": "https://e.com/1",
         "pubDate": "Tue, 21 Jun 2016 12:02:16 GMT", "guid": "g-1", "section": "world"},
        {"name": "Two", "text": ["First.", "Second."], "permalink": "https://e.com/2", "timestamp": 1466510536,
         "_id": {"$oid": "5f1"}, "topic": "tech"},
        {"title": "Three &amp; more", "article": "<p>Hello &amp; <b>bold</b></p><p>Bye</p>", "published_at": "2016-06-21",
         "uuid": 42, "categories": ["sport", "misc"]},
        {"Title": "Four", "Description": "Only a summary.", "Date": "June 21, 2016"},
        {"title": {"rendered": "Five"}, "content": {"rendered": "<p>WordPress text.</p>"}, "date": "2016-06-21T12:02:16", "id": 5},
    ]  # fmt: skip
    result = parse_file("feeds/list.json", json.dumps(records).encode())
    assert result.refusals == []
    a, b, c, d, e = result.articles
    assert (a.id, a.title, a.url, a.published, a.category, a.paragraphs) == (
        "g-1", "One", "https://e.com/1", "2016-06-21T12:02:16", "world", ["Para one.", "Para two."])  # fmt: skip
    assert (b.id, b.title, b.body, b.published, b.category) == (
        "5f1",
        "Two",
        "First.\n\nSecond.",
        "2016-06-21T12:02:16",
        "tech",
    )
    assert (c.id, c.title, c.paragraphs, c.published, c.category) == (
        "42",
        "Three & more",
        ["Hello & bold", "Bye"],
        "2016-06-21",
        "sport",
    )
    assert (d.id, d.title, d.body, d.published) == ("feeds/list/4", "Four", "Only a summary.", "2016-06-21")
    assert (e.id, e.title, e.body) == ("5", "Five", "WordPress text.")
    assert all(x.source == "feeds/list.json" for x in result.articles)


def test_json_wrapper_and_single_object():
    wrapped = {
        "status": "ok",
        "articles": [{"title": "A", "body": "Text a."}, {"title": "B", "body": "Text b."}],
    }
    result = parse_file("w.json", json.dumps(wrapped).encode())
    assert [a.id for a in result.articles] == ["w/1", "w/2"]
    single = one(parse_file("dir/s.json", json.dumps({"title": "S", "body": "Text s."}).encode()))
    assert (single.id, single.title, single.body) == ("dir/s", "S", "Text s.")


def test_squad_shaped_json():
    doc = {
        "version": "1.1",
        "data": [
            {"title": "Topic", "paragraphs": [{"context": "One.", "qas": []}, {"context": "Two.", "qas": []}]}
        ],
    }
    a = one(parse_file("squad.json", json.dumps(doc).encode()))
    assert (a.title, a.body) == ("Topic", "One.\n\nTwo.")


def test_jsonl_bad_line_among_good():
    lines = [
        json.dumps({"id": "a", "title": "A", "body": "Alpha."}),
        '{"id": "b", "title": "B", "body": ',
        "",
        json.dumps({"title": "C", "body": "Gamma."}),
        "[1, 2]",
        json.dumps({"title": "E only"}),
    ]
    result = parse_file("feed.jsonl", "\n".join(lines).encode())
    assert [(a.id, a.body) for a in result.articles] == [
        ("a", "Alpha."),
        ("feed/4", "Gamma."),
        ("feed/6", "E only"),  # a headline-only record is an article: its headline is its text
    ]
    reasons = {r.path: r.reason for r in result.refusals}
    assert set(reasons) == {"feed.jsonl#2", "feed.jsonl#5"}
    assert reasons["feed.jsonl#2"].startswith("malformed JSON") and "column" in reasons["feed.jsonl#2"]
    assert reasons["feed.jsonl#5"] == "record is a list, not an object"


def test_jsonl_size_cap_is_per_record():
    body = "Word " * 200  # 1 KB a record
    lines = [json.dumps({"id": str(i), "title": f"T{i}", "body": body}) for i in range(3000)]  # 3 MB file
    lines.append(json.dumps({"id": "huge", "title": "H", "body": "x" * 2_100_000}))
    result = parse_file("big.ndjson", "\n".join(lines).encode())
    assert len(result.articles) == 3000
    assert [(r.path, r.reason) for r in result.refusals] == [
        ("big.ndjson#3001", "article is 2.1 MB, over the 2.0 MB limit")
    ]


def test_jsonl_gz_and_json_lines_under_json_name():
    text = "\n".join(json.dumps({"id": i, "title": "T", "body": "B."}) for i in range(3))
    assert [a.id for a in parse_file("a.jsonl.gz", gzip.compress(text.encode())).articles] == ["0", "1", "2"]
    assert [a.id for a in parse_file("a.json", text.encode()).articles] == ["0", "1", "2"]


def test_malformed_json_names_line_and_column():
    result = parse_file("bad.json", b'{\n  "title": "x",\n  "body": oops\n}')
    assert result.articles == []
    assert [(r.path, r.reason) for r in result.refusals] == [
        ("bad.json", "malformed JSON: Expecting value at line 3, column 11")
    ]


def test_epoch_milliseconds_and_integer_ids():
    rec = {"id": 12, "title": "T", "body": "B.", "published": 1466510536000}
    a = one(parse_file("r.json", json.dumps(rec).encode()))
    assert (a.id, a.published) == ("12", "2016-06-21T12:02:16")


# ---------------------------------------------------------------- hostile files


@pytest.mark.parametrize(
    ("relpath", "data", "reason"),
    [
        ("e.txt", b"", "empty file"),
        ("e.json", b"", "empty file"),
        ("w.txt", b" \n\r\n\t ", "empty file (only whitespace)"),
        ("b.txt", b"abc\x00def", "binary file, not text"),
        ("b.json", bytes(range(256)) * 4, "binary file, not text"),
        ("p.txt", b"\x89PNG\r\n\x1a\n" + bytes(100), "binary file (PNG image), not text"),
        ("p.txt", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "binary file (PDF), not text"),
        ("t.txt", b"Just a title", "no body text (title only)"),
        ("x.pdf", b"%PDF-1.4", "unsupported file type '.pdf'"),
        ("README", b"text", "no file extension"),
        ("g.jsonl.gz", b"not gzip at all", "not a gzip file"),
        ("n.json", b"[]", "JSON holds an empty list"),
    ],
)
def test_hostile_files_are_refused(relpath, data, reason):
    result = parse_file(relpath, data)
    assert result.articles == []
    assert [(r.path, r.reason) for r in result.refusals] == [(relpath, reason)]


def test_random_binary_is_refused():
    import random

    rng = random.Random(7)
    data = bytes(rng.randrange(1, 256) for _ in range(20000))
    result = parse_file("r.txt", data)
    assert [r.reason for r in result.refusals] == ["binary file, not text"]


def test_five_megabyte_article_is_refused():
    body = ("All work and no play makes Jack a dull boy. " * 24 + "\n\n") * 4920
    data = ("A title\n\n" + body).encode()
    assert 5_000_000 < len(data) < 5_400_000
    result = parse_file("big.txt", data)
    assert result.articles == []
    assert [(r.path, r.reason) for r in result.refusals] == [
        ("big.txt", "article is 5.2 MB, over the 2.0 MB limit")
    ]
    assert one(parse_file("big.txt", data, max_article_bytes=6_000_000)).title == "A title"


def test_very_large_text_file_is_refused_without_parsing():
    data = b"T\n\n" + b"word " * 5_000_000
    reason = parse_file("huge.txt", data).refusals[0].reason
    assert reason == "file is 25.0 MB, over the 2.0 MB article limit"


def test_deeply_nested_json():
    result = parse_file("deep.json", b"[" * 100_000 + b"]" * 100_000)
    assert result.articles == []
    assert len(result.refusals) == 1
    assert "internal" not in result.refusals[0].reason


def test_corrupt_gzip():
    data = gzip.compress(b'{"title":"T","body":"B."}')[:-12]
    result = parse_file("c.jsonl.gz", data)
    assert result.articles == []
    assert "cut off" in result.refusals[0].reason or "corrupt" in result.refusals[0].reason


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000), relpath=st.sampled_from(["x.txt", "x.json", "x.jsonl", "d/x.md"]))
def test_any_bytes_never_raise(data, relpath):
    result = parse_file(relpath, data)
    assert isinstance(result, ParseResult)
    assert all("internal" not in r.reason for r in result.refusals)
    for a in result.articles:
        assert a.body.strip() and "\r" not in a.body


_TEXTISH = st.text(
    alphabet=st.sampled_from(list('ab "{}[],:\n\r&#;.0123456789string()Tue Jun') + ["\u201c", "\u00e9"]),
    max_size=400,
)


@settings(max_examples=300, deadline=None)
@given(text=_TEXTISH, relpath=st.sampled_from(["x.txt", "x.json", "x.jsonl"]))
def test_any_textlike_input_never_raises(text, relpath):
    result = parse_file(relpath, text.encode())
    assert all("internal" not in r.reason for r in result.refusals)
    assert result.articles or result.refusals

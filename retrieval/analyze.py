"""Text analysis shared by the index and the questions: words -> index terms.

One analyzer turns passages and questions into the same terms:

* Unicode word splitting (Latin, Arabic and Persian script, digits), with combining marks kept
  inside their word;
* casefolding and accent folding (``café`` -> ``cafe``; Arabic diacritics dropped, Arabic yeh/kaf
  folded to the Persian letters, tatweel and zero-width non-joiner removed);
* stopwords removed, Snowball stemming (PyStemmer) in the configured language;
* numbers and amounts stay findable: ``2016``, ``4.75%`` (-> ``4.75%`` and ``4.75``), ``$40bn``
  (-> ``40bn`` and ``40``), ``1,000`` (-> ``1000``);
* hyphenated names give their parts and the whole: ``US-backed`` -> ``back``, ``us-back``;
  acronyms survive the stopword list: ``U.S.`` and ``US`` -> ``us``.
"""

from __future__ import annotations

import re
import threading
import unicodedata

import Stemmer

__all__ = ["Analyzer", "SUPPORTED_LANGUAGES", "ENGLISH_STOPWORDS"]

SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(sorted(Stemmer.algorithms()))

ENGLISH_STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren't",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "can't",
        "cannot",
        "could",
        "couldn't",
        "did",
        "didn't",
        "do",
        "does",
        "doesn't",
        "doing",
        "don't",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "hadn't",
        "has",
        "hasn't",
        "have",
        "haven't",
        "having",
        "he",
        "he'd",
        "he'll",
        "he's",
        "her",
        "here",
        "here's",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "how's",
        "i",
        "i'd",
        "i'll",
        "i'm",
        "i've",
        "if",
        "in",
        "into",
        "is",
        "isn't",
        "it",
        "it's",
        "its",
        "itself",
        "let's",
        "me",
        "more",
        "most",
        "mustn't",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "ought",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "shan't",
        "she",
        "she'd",
        "she'll",
        "she's",
        "should",
        "shouldn't",
        "so",
        "some",
        "such",
        "than",
        "that",
        "that's",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "there's",
        "these",
        "they",
        "they'd",
        "they'll",
        "they're",
        "they've",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "wasn't",
        "we",
        "we'd",
        "we'll",
        "we're",
        "we've",
        "were",
        "weren't",
        "what",
        "what's",
        "when",
        "when's",
        "where",
        "where's",
        "which",
        "while",
        "who",
        "who's",
        "whom",
        "why",
        "why's",
        "with",
        "won't",
        "would",
        "wouldn't",
        "you",
        "you'd",
        "you'll",
        "you're",
        "you've",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "also",
        "s",
        "t",
        "d",
        "ll",
        "m",
        "o",
        "re",
        "ve",
        "y",
        "just",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "us",
    ]
)

_STOPWORDS: dict[str, frozenset[str]] = {"english": ENGLISH_STOPWORDS, "porter": ENGLISH_STOPWORDS}

# Letters, digits and the combining marks that belong inside a word (Latin accents in decomposed
# text, Arabic harakat, Quranic marks), plus the zero-width non-joiner used inside Persian words.
_MARKS = (
    "\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed\u200c"
)
_W = rf"(?:[^\W_]|[{_MARKS}])"
_TOKEN = re.compile(
    rf"(?:[^\W\d_]\.){{2,}}"  # acronyms: U.S., e.g.
    rf"|[$£€¥]?{_W}+(?:(?:[-\u2010\u2011'\u2019]|(?<=\d)[.,](?=\d)){_W}+)*(?:(?<=\d)%)?"
)
_HYPHENS = re.compile(r"[-\u2010\u2011]")
_NUMBER = re.compile(r"^(\d+(?:[.,]\d+)*)([^\W\d_]*)(%?)$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_SCRIPT_FOLD = str.maketrans(
    {
        "\u064a": "\u06cc",
        "\u0649": "\u06cc",
        "\u0643": "\u06a9",
        "\u0640": None,
        "\u200c": None,
        "\u2019": "'",
    }
)
# Short acronyms that collide with a stopword: kept when written in capitals.
_CAPITAL_ACRONYMS = frozenset({"us"})
_CACHE_LIMIT = 500_000


def fold(text: str) -> str:
    """Casefold, strip accents and diacritics, and fold script variants and digits."""
    if text.isascii():  # only the case to fold: the tables below map other characters
        return text.lower()
    text = text.casefold().translate(_SCRIPT_FOLD).translate(_DIGITS)
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


class Analyzer:
    """Turns text into index terms; the same instance serves passages and questions."""

    __slots__ = (
        "language",
        "_stemmer",
        "_stopwords",
        "_terms_cache",
        "_spans_cache",
        "_chunk_spans",
        "_lock",
    )

    def __init__(self, language: str = "english") -> None:
        if language not in SUPPORTED_LANGUAGES:
            raise ValueError(
                f"unsupported language {language!r}; supported: {', '.join(SUPPORTED_LANGUAGES)}"
            )
        self.language = language
        # Without PyStemmer's own cache of stems: the analyzer keeps each token's terms itself, so that cache only
        # saw words new to the analyzer, and keeping it (dropping its least used words when full) cost more than
        # stemming them (about 1.3 instead of 0.4 µs a new word).
        self._stemmer = Stemmer.Stemmer(language, 0)
        self._stopwords = _STOPWORDS.get(language, frozenset())
        self._terms_cache: dict[str, tuple[str, ...]] = {}
        self._spans_cache: dict[str, tuple[tuple[int, int, str], ...]] = {}
        self._chunk_spans: dict[str, tuple[tuple[int, int, str], ...]] = {}
        self._lock = threading.Lock()  # PyStemmer objects are not thread safe

    def __repr__(self) -> str:
        return f"Analyzer({self.language!r})"

    # -- public API -------------------------------------------------------------------------
    def terms(self, text: str) -> list[str]:
        """Index terms of ``text`` in order, stopwords removed."""
        # Tokens never span whitespace, so whitespace-separated chunks are analyzed (and cached)
        # whole: the same terms as scanning the text, several times faster.
        cache = self._terms_cache
        out: list[str] = []
        for chunk in text.split():
            found = cache.get(chunk)
            if found is None:
                found = self.chunk_terms(chunk)
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[chunk] = found
            out.extend(found)
        return out

    def chunk_terms(self, chunk: str, tokens: dict[str, tuple[str, ...]] | None = None) -> tuple[str, ...]:
        """Index terms of one whitespace-free piece of text (``terms`` of a text is the concatenation of
        its pieces' terms). ``tokens``: the caller's cache of each token's terms, filled as it goes."""
        if tokens is None:
            return tuple(t for token in _TOKEN.findall(chunk) for _, _, t in self._token_spans(token))
        out: list[str] = []
        for token in _TOKEN.findall(chunk):
            found = tokens.get(token)
            if found is None:
                found = tokens[token] = tuple(t for _, _, t in self._analyze_token(token))
            out.extend(found)
        return tuple(out)

    def term_spans(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, term)`` for each term of ``text``; offsets index into ``text``."""
        # As in terms(): tokens never span whitespace, so each whitespace-separated chunk's spans are
        # computed once and shifted to where the chunk sits. Between two chunks there is only
        # whitespace, so searching for the next chunk from the end of the previous one finds it.
        cache = self._chunk_spans
        out: list[tuple[int, int, str]] = []
        cursor = 0
        find = text.find
        for chunk in text.split():
            base = find(chunk, cursor)
            cursor = base + len(chunk)
            found = cache.get(chunk)
            if found is None:
                found = tuple(
                    (m.start() + s, m.start() + e, t)
                    for m in _TOKEN.finditer(chunk)
                    for s, e, t in self._token_spans(m.group())
                )
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[chunk] = found
            if found:
                if base:
                    out.extend([(base + s, base + e, t) for s, e, t in found])
                else:
                    out.extend(found)
        return out

    def _token_spans(self, token: str) -> tuple[tuple[int, int, str], ...]:
        cache = self._spans_cache
        found = cache.get(token)
        if found is None:
            found = self._analyze_token(token)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[token] = found
        return found

    def is_stopword(self, word: str) -> bool:
        return fold(word) in self._stopwords

    # -- internals --------------------------------------------------------------------------
    def _stem(self, word: str) -> str:
        with self._lock:
            return self._stemmer.stemWord(word)

    def _word_term(self, part: str) -> str | None:
        """Term for one hyphen-free word, or None for a stopword."""
        folded = fold(part)
        if not folded or folded in self._stopwords:
            return None
        return fold(self._stem(part.casefold().translate(_SCRIPT_FOLD))) or folded

    def _analyze_token(self, token: str) -> tuple[tuple[int, int, str], ...]:
        """Terms of one raw token with their offsets inside the token."""
        if token.endswith(".") and "." in token[:-1] and not any(c.isdigit() for c in token):
            letters = fold(token.replace(".", ""))
            return ((0, len(token), letters),) if letters else ()
        start = 0
        if token[0] in "$£€¥":
            start = 1
        body = token[start:]
        if len(body) <= 3 and body.isupper() and body.casefold() in _CAPITAL_ACRONYMS:
            return ((start, len(token), body.casefold()),)
        if body.isascii() and body.isalpha():  # a plain word (most words): no hyphen, no number
            term = self._word_term(body)
            return ((start, len(token), term),) if term is not None else ()
        out: list[tuple[int, int, str]] = []
        parts: list[tuple[int, int, str]] = []
        pos = start
        for piece in _HYPHENS.split(body):
            parts.append((pos, pos + len(piece), piece))
            pos += len(piece) + 1
        for s, e, piece in parts:
            number = _NUMBER.match(piece.translate(_DIGITS))
            if number and piece[:1].translate(_DIGITS).isdigit():
                digits, suffix, percent = number.groups()
                if _THOUSANDS.match(digits):
                    digits = digits.replace(",", "")
                whole = digits + fold(suffix) + percent
                out.append((s, e, whole))
                if whole != digits:
                    out.append((s, e, digits))
                continue
            term = self._word_term(piece)
            if term is not None:
                out.append((s, e, term))
        if len(parts) > 1:
            head = [fold(p) for _, _, p in parts[:-1]]
            last = parts[-1][2]
            tail = (
                fold(self._stem(last.casefold().translate(_SCRIPT_FOLD)))
                if not last[:1].isdigit()
                else fold(last)
            )
            compound = "-".join([*head, tail])
            if compound.strip("-"):
                out.append((parts[0][0], parts[-1][1], compound))
        return tuple(out)

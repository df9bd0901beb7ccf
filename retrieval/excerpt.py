"""Pick the few sentences of one passage that best answer a question, and mark the matched words.

A thin front to :mod:`retrieval.quote` for a single passage (the search page's quotes, tests and
tools): the window chooser there scores sentence windows by the question's idf-weighted terms and
the answer type it asks for, and cuts long windows at word boundaries with "…".
"""

from __future__ import annotations

from collections.abc import Callable

from retrieval.analyze import Analyzer
from retrieval.question import build_query
from retrieval.quote import ELLIPSIS, Excerpt, choose_quote

__all__ = ["ELLIPSIS", "Excerpt", "choose_excerpt"]


def choose_excerpt(
    passage_text: str,
    question: str,
    analyzer: Analyzer,
    *,
    idf: Callable[[str], float] | None = None,
    max_chars: int = 300,
) -> Excerpt:
    """The 1-3 consecutive sentences of ``passage_text`` that best answer ``question``."""
    text = passage_text if isinstance(passage_text, str) else str(passage_text)
    query = build_query(question or "", analyzer)
    return choose_quote([(0, text)], 0, query, analyzer, idf=idf, max_chars=max_chars).excerpt

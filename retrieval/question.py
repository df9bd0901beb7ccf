"""What a question asks for: its weighted search terms and the kind of answer it expects.

A follow-up is searched with the earlier questions as context: the context's terms steer the
search towards the same articles, at a fraction of the weight of the follow-up's own terms, so
the new question leads ("how much did they pay?" after "the transfer of a striker to Chelsea").

The expected answer type comes from the question's wording only (how many, when, who, where, ...),
never from what it is about; the quote chooser prefers windows that hold an answer of that type.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.analyze import Analyzer

__all__ = ["AnswerType", "Query", "answer_type", "build_query", "CONTEXT_WEIGHT"]

# The weight of an earlier question's terms against the follow-up's own (1.0).
CONTEXT_WEIGHT = 0.4
MAX_CONTEXT_QUESTIONS = 3


class AnswerType(enum.Enum):
    QUANTITY = "quantity"  # how many / how much / what percentage: numbers, amounts, shares
    DATE = "date"  # when / what year: dates, years, days
    PERSON = "person"  # who: names of people or organisations
    PLACE = "place"  # where / which city: place names
    NAME = "name"  # which / what <noun>: names and noun phrases
    REASON = "reason"  # why: because, after, over, due to
    OTHER = "other"


_PATTERNS: tuple[tuple[AnswerType, re.Pattern[str]], ...] = (
    (
        AnswerType.QUANTITY,
        re.compile(
            r"\bhow (?:many|much|long|old|far|large|big|often|tall|high|fast|quickly|heavy|deep|wide|low|soon)\b"
            r"|\bwhat (?:is |was |were |are )?(?:the )?(?:percentage|percent|proportion|share|number|amount"
            r"|price|cost|fee|sum|figure|total|rate|value|size|score|margin|fine|salary|budget|fraction)\b"
            r"|\bhow much\b|\bby how\b",
            re.IGNORECASE,
        ),
    ),
    (
        AnswerType.DATE,
        re.compile(
            r"\bwhen\b|\b(?:what|which|in what) (?:year|date|day|month|time|season|century|decade)\b"
            r"|\bwhat time\b|\bhow soon\b|\buntil when\b",
            re.IGNORECASE,
        ),
    ),
    (
        AnswerType.PLACE,
        re.compile(
            r"\bwhere\b|\b(?:what|which) (?:city|country|town|state|region|place|venue|stadium|county"
            r"|nation|capital|ground|island|continent|village|court|prison|hospital|airport|street)\b",
            re.IGNORECASE,
        ),
    ),
    (
        AnswerType.PERSON,
        re.compile(
            r"\bwho(?:m|se|'s)?\b|\bwhat (?:is|was) (?:the |his |her )?name\b"
            r"|\b(?:which|what) (?:\w+ )?(?:actor|actress|singer|player|manager|coach|star|minister|chief|boss"
            r"|president|leader|man|woman|person|people|writer|author|director|presenter|musician|band|group"
            r"|artist|rapper|driver|rider|golfer|captain|referee|judge|politician|mp|official|executive"
            r"|chairman|founder|owner|spokesman|spokeswoman|member|candidate|winner|striker|keeper|team|club"
            r"|company|firm|bank|newspaper|channel|network|broadcaster|label)s?\b",
            re.IGNORECASE,
        ),
    ),
    (AnswerType.REASON, re.compile(r"\bwhy\b|\bwhat (?:caused|led to|prompted)\b|\bfor what reason\b", re.I)),
    (AnswerType.NAME, re.compile(r"\b(?:which|what)\b", re.IGNORECASE)),
)


def answer_type(question: str) -> AnswerType:
    """The kind of answer ``question`` asks for, from its question words."""
    for kind, pattern in _PATTERNS:
        if pattern.search(question):
            return kind
    return AnswerType.OTHER


@dataclass(frozen=True, slots=True)
class Query:
    """A question ready to search: analyzed terms with weights, and what it asks for."""

    text: str  # the question as asked (cleaned), without its context
    terms: dict[str, float]  # analyzed term -> weight (own terms 1.0 each occurrence, context less)
    own: frozenset[str]  # the terms of the question itself
    kind: AnswerType
    context: tuple[str, ...] = ()

    @property
    def is_follow_up(self) -> bool:
        return bool(self.context)


# "how many", "how much", "how long": the second word asks for the answer's kind; it is not a topic.
_HOW_WORD = re.compile(r"\b(how)\s+(?:many|much|long|far|old|often|big|large)\b", re.IGNORECASE)


def build_query(
    question: str,
    analyzer: Analyzer,
    *,
    context: Sequence[str] = (),
    context_weight: float = CONTEXT_WEIGHT,
) -> Query:
    """Weighted terms of ``question``; the terms of earlier ``context`` questions (oldest first) join
    at ``context_weight``, the most recent at the most weight, and never outweigh the question's own."""
    terms: dict[str, float] = {}
    for term in analyzer.terms(_HOW_WORD.sub(r"\1", question)):
        terms[term] = terms.get(term, 0.0) + 1.0
    own = frozenset(terms)
    recent = list(context)[-MAX_CONTEXT_QUESTIONS:]
    for age, earlier in enumerate(reversed(recent)):
        weight = context_weight / (1 + age)
        for term in analyzer.terms(earlier):
            if term in own:
                continue
            terms[term] = max(terms.get(term, 0.0), weight)
    # A follow-up asks in its own words ("how much did they pay?"): its answer type is its own.
    return Query(text=question, terms=terms, own=own, kind=answer_type(question), context=tuple(recent))

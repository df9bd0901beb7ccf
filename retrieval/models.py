"""Plain records shared by the parsers, the store, the index and the service."""

from __future__ import annotations

import dataclasses
import hashlib
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar


class PickledAsCall:
    """Mixin for a slots dataclass whose fields are all ``__init__`` arguments, in order: pickled as the call of
    its class on its fields. The answers that search processes send the bot pickle and load about 1.7x as fast
    as through the ``__getstate__``/``__setstate__`` pair that ``slots=True`` generates (written in Python)."""

    __slots__ = ()
    _field_values: ClassVar[Callable[[Any], tuple[Any, ...]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Called again for the class that ``dataclass(slots=True)`` makes, which has the slots.
        names = tuple(cls.__dict__.get("__slots__", ()))
        if names and "__dataclass_fields__" in cls.__dict__:
            fields = dataclasses.fields(cls)  # type: ignore[arg-type]
            if any(not f.init for f in fields) or tuple(f.name for f in fields) != names:
                # A call of the class on the slots' values would not rebuild the object.
                raise TypeError(
                    f"{cls.__name__}: PickledAsCall needs every field an __init__ argument, in order"
                )
        getter = operator.attrgetter(*names) if names else (lambda _: ())
        cls._field_values = getter if len(names) != 1 else (lambda obj: (getter(obj),))

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        cls = type(self)
        return cls, cls._field_values(self)


@dataclass(frozen=True, slots=True)
class RelatedItem:
    """One "related article" entry scraped alongside an article."""

    id: str
    title: str
    published: str | None = None  # ISO date (YYYY-MM-DD) when the source gives one


@dataclass(slots=True)
class Article:
    """One news article as parsed from the corpus.

    ``id`` is stable across reloads: the file path relative to the corpus folder without its
    extension (``business/312``), or a JSON record's own id. ``body`` holds the paragraphs joined
    by a blank line (``"\\n\\n"``); it never contains scraped boilerplate such as related-article dumps.
    """

    id: str
    title: str
    body: str
    source: str  # path relative to the corpus folder
    published: str | None = None  # ISO 8601 (``2016-06-21T12:02:16`` or ``2016-06-21``)
    url: str | None = None
    category: str | None = None
    related: list[RelatedItem] = field(default_factory=list)

    @property
    def content_hash(self) -> str:
        """Hash of what a reader sees: the same text under two names hashes the same."""
        h = hashlib.sha256()
        for part in (self.title, self.body):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()[:32]

    @property
    def paragraphs(self) -> list[str]:
        return [p for p in self.body.split("\n\n") if p.strip()]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a file (or one record of it) was not ingested."""

    path: str  # relative path, with ``#N`` for record N of a multi-record file
    reason: str


@dataclass(slots=True)
class ParseResult:
    """What one file yielded: zero or more articles, and a refusal per bad file or record."""

    articles: list[Article] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Passage:
    """The unit that is ranked and quoted: a paragraph, or a few sentences of a long one."""

    article_id: str
    ordinal: int  # 0-based position within the article; links point at ``#p<ordinal>``
    text: str

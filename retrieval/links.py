"""Which link an excerpt gets: the article's own URL, else a configured template, else newsdesk's own page."""

from __future__ import annotations

import re
import string
from datetime import datetime
from urllib.parse import quote, urlsplit

TEMPLATE_FIELDS = ("id", "source", "published", "category")
# A date format for {published:...}: strftime directives without flags or widths (``%Y/%m/%d``), which
# could otherwise pad a link to gigabytes (``%999999999Y``).
_DATE_FORMAT = re.compile(r"(?:[^%{}]|%[A-Za-z%])*")
_MAX_DATE_FORMAT = 40


class LinkTemplateError(ValueError):
    """The link template cannot produce URLs; the message says why."""


def _is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _parse_published(published: str | None) -> datetime | None:
    if not published:
        return None
    try:
        return datetime.fromisoformat(published.replace("Z", "+00:00"))
    except ValueError:
        return None


def validate_template(template: str) -> None:
    """Raise LinkTemplateError unless ``template`` is an http(s) URL whose fields are all known."""
    try:
        parts = [
            (name, spec, conv)
            for _, name, spec, conv in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError as exc:
        raise LinkTemplateError(f"it is not a valid template ({exc})") from exc
    fields = [name for name, _, _ in parts]
    for name, spec, conversion in parts:
        if name not in TEMPLATE_FIELDS:
            raise LinkTemplateError(
                f"it uses the unknown field {{{name}}}; the fields are "
                + ", ".join(f"{{{f}}}" for f in TEMPLATE_FIELDS)
            )
        if conversion:
            raise LinkTemplateError(f"{{{name}!{conversion}}}: conversions are not allowed in a link")
        if spec and name != "published":
            raise LinkTemplateError(
                f"{{{name}:{spec}}}: formats and widths are not allowed in a link; write {{{name}}}"
            )
        if spec and (len(spec) > _MAX_DATE_FORMAT or not _DATE_FORMAT.fullmatch(spec)):
            raise LinkTemplateError(
                f"{{published:{spec}}}: the date format may hold only strftime codes such as %Y/%m/%d, "
                "without widths or flags"
            )
    if "id" not in fields and "source" not in fields:
        raise LinkTemplateError("it must contain {id} or {source}, or every article would get the same link")
    sample = _fill(template, "business/312", "business/312.txt", datetime(2016, 6, 21, 12, 2, 16), "business")
    if sample is None or not _is_web_url(sample):
        raise LinkTemplateError("it must give an http:// or https:// address")


def _fill(
    template: str, article_id: str, source: str, published: datetime | None, category: str | None
) -> str | None:
    try:
        return template.format(
            id=quote(article_id, safe="/"),
            source=quote(source, safe="/"),
            published=published,
            category=quote(category or "", safe=""),
        )
    except (ValueError, TypeError, AttributeError, KeyError, IndexError):
        return None


class LinkPolicy:
    """Builds the link for an article (and one passage of it)."""

    def __init__(self, template: str | None = None, public_url: str | None = None) -> None:
        if template:
            validate_template(template)
        if public_url and not _is_web_url(public_url):
            raise LinkTemplateError("the public URL must start with http:// or https://")
        self.template = template or None
        self.uses_published = bool(template and "{published" in template)
        self.public_url = public_url.rstrip("/") if public_url else None

    def page_url(self, article_id: str, ordinal: int | None = None) -> str | None:
        if not self.public_url:
            return None
        url = f"{self.public_url}/articles/{quote(article_id, safe='/')}"
        return url if ordinal is None else f"{url}#p{ordinal}"

    def url_for(
        self,
        *,
        article_id: str,
        url: str | None,
        source: str,
        published: str | None,
        category: str | None,
        ordinal: int | None = None,
    ) -> str | None:
        if url and _is_web_url(url):
            return url
        if self.template:
            when = _parse_published(published)
            if when is not None or not self.uses_published:
                filled = _fill(self.template, article_id, source, when, category)
                if filled:
                    return filled
        return self.page_url(article_id, ordinal)

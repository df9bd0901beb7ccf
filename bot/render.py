"""Pure rendering: answers and headlines -> Discord message parts, always within Discord's limits.

Corpus text and questions are escaped so that nothing in an article can ping anyone, open a masked
link or break the layout; matched terms are bolded by us, around escaped text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import discord

from retrieval import Answer, Headline

CONTENT_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_LIMIT = 1024
EMBED_FIELDS_MAX = 25
EMBED_FOOTER_LIMIT = 2048
EMBEDS_TOTAL_LIMIT = 6000
EMBEDS_MAX = 10
URL_LIMIT = 512

ACCENT = 0x2B6CB0
NO_MATCH_COLOUR = 0x718096

# Every ASCII character that Discord's Markdown gives a meaning to, plus the mention/emoji brackets.
_MARKDOWN = re.compile(r"([\\*_~`|>\[\]()<@])")
# Headings, lists and subtext only start a line; our text never does except at its own start.
_LINE_START = re.compile(r"^(\s*)([-#+]|\d+\.)")
_MENTION_WORDS = re.compile(r"@(?=(everyone|here)\b)", re.I)
_SPACES = re.compile(r"\s+")
# Characters that would let text escape its line or hide in it.
_INVISIBLE_CHARS = r"\u0000-\u0008\u000b-\u001f\u007f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]")


def _escape_line_start(match: re.Match) -> str:
    mark = match.group(2)
    return match.group(1) + (mark[:-1] + "\\." if mark.endswith(".") else "\\" + mark)


# Anything ``escape`` would change: an invisible character, whitespace other than single spaces, a Markdown
# character (``@`` included). Most stretches of article text between two bolded words hold none of these.
_TO_ESCAPE = re.compile(f"[{_INVISIBLE_CHARS}" + r"\\*_~`|>\[\]()<@]|[^\S ]|  ")


def escape(text: str) -> str:
    """Corpus or user text -> Markdown that shows exactly that text on one line and cannot ping."""
    if not _TO_ESCAPE.search(text) and not _LINE_START.match(text):
        return text  # nothing to change (one search instead of five substitutions)
    return _escape_all(text)


def _escape_all(text: str) -> str:
    text = _INVISIBLE.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _MARKDOWN.sub(r"\\\1", text)
    text = _LINE_START.sub(_escape_line_start, text)
    # Backslashes do not stop @everyone from being read as a mention; a zero-width joiner does.
    return _MENTION_WORDS.sub("@\u2060", text)


def clip(text: str, limit: int) -> str:
    """Cut plain text at a word boundary to at most ``limit`` characters, with an ellipsis."""
    text = _SPACES.sub(" ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def safe_url(url: str | None) -> str | None:
    """An http(s) URL fit to sit inside a Markdown link, or None."""
    if not url or len(url) > URL_LIMIT:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")  # encodes spaces, quotes, brackets and parentheses


def bold_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """Escape ``text`` and bold the given character spans of it."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        start, end = max(0, start), min(len(text), end)
        if end <= start:
            continue
        if merged and start <= merged[-1][1] + 1 and not text[merged[-1][1] : start].strip():
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, last = [], 0
    for start, end in merged:
        out.append(escape(text[last:start]))
        inner = escape(text[start:end]).strip()
        out.append(f"**{inner}**" if inner else "")
        last = end
    out.append(escape(text[last:]))
    return "".join(out)


def quote_lines(text: str, spans: list[tuple[int, int]]) -> str:
    """A quote that spans two paragraphs as two quoted lines, each escaped and bolded on its own."""
    out, start = [], 0
    for part in text.split("\n"):
        end = start + len(part)
        out.append(bold_spans(part, [(s - start, e - start) for s, e in spans if s >= start and e <= end]))
        start = end + 1
    return "\n> ".join(out)


def format_date(published: str | None) -> str:
    return published[:10] if published else "undated"


@dataclass(slots=True)
class Reply:
    """The parts of one message: plain content and embeds, already within limits."""

    content: str = ""
    embeds: list[discord.Embed] = field(default_factory=list)


def render_answer(answer: Answer, *, page_size: int, excerpt_chars: int = 800) -> Reply:
    """One embed: the question as title, then per result the linked title, date and quoted excerpt."""
    if answer.no_match or not answer.results:
        return render_no_match(answer)
    blocks = []
    budget = (EMBED_DESCRIPTION_LIMIT - 64) // max(len(answer.results), 1)
    for n, result in enumerate(answer.results, answer.offset + 1):
        heading_title = escape(clip(result.title, 180))
        url = safe_url(result.url)
        heading = f"**{n}. [{heading_title}]({url})**" if url else f"**{n}. {heading_title}**"
        heading += f" · {format_date(result.published)}"
        text = result.excerpt.text
        spans = list(result.excerpt.spans)
        quote_line = quote_lines(text, spans)
        # Trim the excerpt (never the escaped Markdown) until the block fits its share.
        limit = min(len(text), excerpt_chars)
        while len(heading) + len(quote_line) + 4 > budget and limit > 20:
            limit = int(limit * 0.8)
            short = clip(text, limit)
            quote_line = bold_spans(
                short, [(s, min(e, len(short) - 1)) for s, e in spans if s < len(short) - 1]
            )
        block = f"{heading}\n> {quote_line}"
        if result.missing:  # the question's distinctive words this article lacks, as search engines show them
            block += f"\n-# Missing: {escape(clip(', '.join(result.missing), 200))}"
        blocks.append(block)
    corrected = corrections_line(answer)
    if corrected:
        blocks.insert(0, corrected)
    embed = discord.Embed(
        title=escaped_clip(answer.question, EMBED_TITLE_LIMIT),
        description="\n\n".join(blocks)[:EMBED_DESCRIPTION_LIMIT],
        colour=ACCENT,
    )
    shown_to = answer.offset + len(answer.results)
    more = " · ▶ for more" if answer.has_more else ""
    embed.set_footer(
        text=clip(
            f"Results {answer.offset + 1}-{shown_to}{more} · {answer.took_ms:.0f} ms", EMBED_FOOTER_LIMIT
        )
    )
    return Reply(embeds=[embed])


def corrections_line(answer: Answer) -> str:
    """ "Showing results for kuznetsova (not kuznetsva)", or "" when no word was corrected."""
    if not answer.corrections:
        return ""
    fixed = ", ".join(
        f"**{escape(clip(to, 40))}** (not {escape(clip(typed, 40))})" for typed, to in answer.corrections[:5]
    )
    return f"Showing results for {fixed}"


def render_no_match(answer: Answer) -> Reply:
    lacking = answer.results[0].missing if answer.results else ()
    parts = ["No passage in the archive answers that well, so I won't guess."]
    if lacking:
        parts.append(f"The closest articles never mention {escape(clip(', '.join(lacking), 200))}.")
    parts.append(
        "Try different words: a name, a place, an organisation or a date "
        "(for example `Manbij offensive June 2016`), or fewer words."
    )
    corrected = corrections_line(answer)
    embed = discord.Embed(
        title=escaped_clip(answer.question, EMBED_TITLE_LIMIT),
        description="\n".join(([corrected] if corrected else []) + parts),
        colour=NO_MATCH_COLOUR,
    )
    return Reply(embeds=[embed])


def render_headlines(
    headlines: list[Headline], *, offset: int, title: str = "Latest headlines", more: bool = False
) -> Reply:
    if not headlines:
        return Reply(
            embeds=[discord.Embed(title=title, description="No articles match.", colour=NO_MATCH_COLOUR)]
        )
    lines = []
    for n, h in enumerate(headlines, offset + 1):
        text = escape(clip(h.title, 150))
        url = safe_url(h.url)
        linked = f"[{text}]({url})" if url else text
        lines.append(f"`{n:>2}` {format_date(h.published)} · {linked}")
    description = ""
    for line in lines:
        if len(description) + len(line) + 1 > EMBED_DESCRIPTION_LIMIT:
            break
        description += line + "\n"
    embed = discord.Embed(
        title=escaped_clip(title, EMBED_TITLE_LIMIT), description=description, colour=ACCENT
    )
    footer = f"{offset + 1}-{offset + len(headlines)}" + (" · more with ▶" if more else "")
    embed.set_footer(text=footer)
    return Reply(embeds=[embed])


def escaped_clip(text: str, limit: int) -> str:
    """Escape ``text`` and make it fit ``limit`` characters, cutting the plain text (never an escape)."""
    plain_limit = limit
    while True:
        escaped = escape(clip(text, plain_limit))
        if len(escaped) <= limit or plain_limit <= 1:
            return escaped[:limit]
        plain_limit = min(plain_limit - 1, int(plain_limit * limit / len(escaped)))


def embeds_size(embeds: list[discord.Embed]) -> int:
    return sum(len(e) for e in embeds)


def within_limits(reply: Reply) -> bool:
    """Discord's published limits, checked the way the API counts them."""
    if len(reply.content) > CONTENT_LIMIT or len(reply.embeds) > EMBEDS_MAX:
        return False
    if embeds_size(reply.embeds) > EMBEDS_TOTAL_LIMIT:
        return False
    for e in reply.embeds:
        if e.title and len(e.title) > EMBED_TITLE_LIMIT:
            return False
        if e.description and len(e.description) > EMBED_DESCRIPTION_LIMIT:
            return False
        if len(e.fields) > EMBED_FIELDS_MAX or any(len(f.value or "") > EMBED_FIELD_LIMIT for f in e.fields):
            return False
        if e.footer.text and len(e.footer.text) > EMBED_FOOTER_LIMIT:
            return False
    return True

"""HTML for the web pages: pure functions from data to a page, with no server and no database.

Everything that comes from the corpus or from the reader is escaped here; the pages need no
script, no external file and no font download.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from urllib.parse import quote, urlencode, urlsplit

NO_MATCH = "No passage in the corpus answers that well. Try other words, a name, a place or a date."

STYLE = """
:root { color-scheme: light dark; --fg: #1b1b1b; --bg: #fdfdfc; --muted: #5f6368; --line: #e2e2e0;
  --accent: #0b57d0; --mark: #ffe27a; --target: #fff6d6; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8e8e6; --bg: #161616; --muted: #a0a4a8;
  --line: #333; --accent: #8ab4f8; --mark: #6b5900; --target: #2a2614; } }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 17px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main, .top { max-width: 42rem; margin: 0 auto; padding: 0 1rem; }
.top { display: flex; align-items: baseline; gap: 1rem; padding-top: .8rem; padding-bottom: .8rem;
  border-bottom: 1px solid var(--line); }
.top a.home { font-weight: 700; text-decoration: none; color: var(--fg); }
a { color: var(--accent); overflow-wrap: anywhere; }
h1 { font-size: 1.55rem; line-height: 1.25; margin: 1.2rem 0 .4rem; overflow-wrap: anywhere; }
h2 { font-size: 1.05rem; margin: 2rem 0 .5rem; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); }
.meta { color: var(--muted); font-size: .9rem; margin: 0 0 1.2rem; }
.meta span + span::before { content: " · "; }
section { padding: .1rem .6rem; margin: 0 -.6rem; border-radius: 6px; scroll-margin-top: 1rem; }
section:target { background: var(--target); box-shadow: inset 3px 0 0 var(--accent); }
section p { margin: .7rem 0; overflow-wrap: break-word; }
a.para { float: right; margin-left: .5rem; color: var(--muted); text-decoration: none; font-size: .85rem; }
mark { background: var(--mark); color: inherit; padding: 0 .1em; border-radius: 2px; }
form.search { display: flex; gap: .5rem; margin: 1.2rem 0; }
form.search input[type=search] { flex: 1; min-width: 0; font: inherit; padding: .5rem .7rem;
  border: 1px solid var(--line); border-radius: 8px; background: var(--bg); color: var(--fg); }
form.search button { font: inherit; padding: .5rem 1rem; border: 0; border-radius: 8px;
  background: var(--accent); color: var(--bg); cursor: pointer; }
ol.results, ul.headlines { list-style: none; padding: 0; margin: 0; }
ol.results li { padding: .8rem 0; border-bottom: 1px solid var(--line); }
ol.results .title { font-weight: 600; font-size: 1.05rem; }
blockquote { margin: .4rem 0; padding-left: .8rem; border-left: 3px solid var(--line); }
blockquote strong { font-weight: 700; }
ul.headlines li { padding: .35rem 0; display: flex; gap: .8rem; }
ul.headlines time, ul.headlines .when { color: var(--muted); font-size: .85rem; white-space: nowrap;
  min-width: 6.5rem; font-variant-numeric: tabular-nums; }
.notice { padding: .7rem .9rem; border-radius: 8px; border: 1px solid var(--line); }
.error { border-color: #d93025; }
.small { color: var(--muted); font-size: .85rem; }
footer { margin: 2.5rem 0 2rem; }
"""

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def format_date(published: str | None, *, short: bool = False) -> str:
    """``2016-06-21T12:02:16`` -> ``21 June 2016, 12:02`` (``2016-06-21`` when ``short``)."""
    if not published:
        return "undated"
    try:
        when = datetime.fromisoformat(published.replace("Z", "+00:00"))
    except ValueError:
        return published[:10] if short else published
    if short:
        return when.date().isoformat()
    text = f"{when.day} {_MONTHS[when.month - 1]} {when.year}"
    if "T" in published or " " in published.strip():
        text += f", {when:%H:%M}"
    return text


def _time(published: str | None, *, short: bool = False) -> str:
    if not published:
        return '<span class="when">undated</span>'
    return f'<time datetime="{esc(published)}">{esc(format_date(published, short=short))}</time>'


def is_web_url(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def article_href(root: str, article_id: str, *, query: str | None = None, ordinal: int | None = None) -> str:
    """The path of an article page relative to ``root`` (the site's root as the page reaches it)."""
    href = f"{root}articles/{quote(article_id, safe='/')}"
    if query:
        href += "?" + urlencode({"q": query})
    if ordinal is not None:
        href += f"#p{ordinal}"
    return href


def search_href(root: str, query: str | None = None) -> str:
    return root + ("?" + urlencode({"q": query}) if query else "")


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping spans (overlapping or touching ones joined)."""
    merged: list[list[int]] = []
    for start, end in sorted((s, e) for s, e in spans if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def wrap_spans(text: str, spans: Iterable[tuple[int, int]], tag: str) -> str:
    """``text`` escaped, with each span inside ``<tag>``; spans outside the text are ignored."""
    out: list[str] = []
    last = 0
    for start, end in merge_spans(spans):
        start, end = max(start, last), min(end, len(text))
        if start >= end:
            continue
        out.append(esc(text[last:start]))
        out.append(f"<{tag}>{esc(text[start:end])}</{tag}>")
        last = end
    out.append(esc(text[last:]))
    return "".join(out)


def layout(title: str, body: str, *, root: str = "/", query: str = "") -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<header class="top"><a class="home" href="{esc(root)}">newsdesk</a>'
        f'<span class="small">answers from the news archive</span></header>\n'
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def search_form(root: str, query: str = "", *, autofocus: bool = False) -> str:
    return (
        f'<form class="search" action="{esc(root)}" method="get" role="search">'
        f'<input type="search" name="q" value="{esc(query)}" aria-label="Question"'
        f' placeholder="Ask a question, e.g. who surrounded Manbij in 2016?"'
        f"{' autofocus' if autofocus else ''}>"
        '<button type="submit">Search</button></form>'
    )


def headline_list(root: str, headlines: Sequence) -> str:
    """Headlines (anything with ``article_id``, ``title`` and ``published``) linked to their pages."""
    if not headlines:
        return '<p class="small">The archive is empty.</p>'
    items = "".join(
        f'<li>{_time(h.published, short=True)}<a href="{esc(article_href(root, h.article_id))}">'
        f"{esc(h.title)}</a></li>"
        for h in headlines
    )
    return f'<ul class="headlines">{items}</ul>'


def search_page(
    *,
    root: str = "/",
    query: str | None = None,
    answer=None,
    headlines: Sequence = (),
    error: str | None = None,
    public_url: str | None = None,
) -> str:
    """The search box; then the answer to ``query`` (or the reason it was refused); then the newest headlines."""
    parts = [
        "<h1>Ask the archive</h1>" if not query else f"<h1>{esc(query)}</h1>",
        search_form(root, query or "", autofocus=not query),
    ]
    if error:
        parts.append(f'<p class="notice error" role="alert">{esc(error)}</p>')
    elif answer is not None:
        parts.append(answer_html(root, answer, public_url=public_url))
    parts.append("<h2>Latest headlines</h2>")
    parts.append(headline_list(root, headlines))
    title = f"{query} · newsdesk" if query else "newsdesk"
    return layout(title, "\n".join(parts), root=root)


def answer_html(root: str, answer, *, public_url: str | None = None) -> str:
    """The results of a search; each links to its passage here and, when it has one elsewhere, to its source."""
    if answer.no_match or not answer.results:
        return f'<p class="notice" role="status">{esc(NO_MATCH)}</p>'
    items = []
    for result in answer.results:
        href = article_href(root, result.article_id, query=answer.question, ordinal=result.ordinal)
        source = ""
        own_page = bool(public_url and result.url) and (result.url or "").startswith(
            (public_url or "").rstrip("/") + "/articles/"
        )
        if is_web_url(result.url) and not own_page:
            source = f' · <a href="{esc(result.url)}" rel="noopener noreferrer">source</a>'
        excerpt = wrap_spans(result.excerpt.text, result.excerpt.spans, "strong")
        items.append(
            f'<li><a class="title" href="{esc(href)}">{esc(result.title)}</a>'
            f'<div class="small">{_time(result.published)}{source}</div>'
            f"<blockquote>\u201c{excerpt}\u201d</blockquote></li>"
        )
    took = (
        f'<p class="small">{len(answer.results)} passage{"s" if len(answer.results) != 1 else ""}'
        f" in {answer.took_ms:.0f} ms</p>"
    )
    return f'<ol class="results">{"".join(items)}</ol>{took}'


def article_page(
    article,
    passages: Sequence[tuple[int, str]],
    *,
    root: str = "/",
    query: str | None = None,
    marks: dict[int, list[tuple[int, int]]] | None = None,
    title_marks: list[tuple[int, int]] | None = None,
    known_related: Iterable[str] = (),
) -> str:
    """One article: its metadata, a ``<section id="p<n>">`` per passage (``marks`` highlighted), and
    the related headlines of its source page (linked only when the archive holds them)."""
    marks = marks or {}
    known = set(known_related)
    meta = [f"<span>{_time(article.published)}</span>"]
    if article.category:
        meta.append(f"<span>{esc(article.category)}</span>")
    meta.append(f"<span>{esc(article.source)}</span>")
    if is_web_url(article.url):
        meta.append(
            f'<span><a href="{esc(article.url)}" rel="noopener noreferrer">original article</a></span>'
        )
    parts = [
        f"<h1>{wrap_spans(article.title, title_marks or [], 'mark')}</h1>",
        f'<p class="meta">{"".join(meta)}</p>',
        "<article>",
    ]
    own = article_href(root, article.id, query=query)
    for ordinal, text in passages:
        body = wrap_spans(text, marks.get(ordinal, []), "mark")
        parts.append(
            f'<section id="p{ordinal}"><a class="para" href="{esc(own)}#p{ordinal}"'
            f' aria-label="Link to this passage">\u00b6</a><p>{body}</p></section>'
        )
    if not passages:
        parts.append('<p class="small">This article has no text.</p>')
    parts.append("</article>")
    if article.related:
        items = []
        for item in article.related:
            title = esc(item.title)
            if item.id in known:
                title = f'<a href="{esc(article_href(root, item.id))}">{title}</a>'
            items.append(f"<li>{_time(item.published, short=True)}<span>{title}</span></li>")
        parts.append(f'<h2>Related</h2><ul class="headlines">{"".join(items)}</ul>')
    back = search_href(root, query)
    label = "Back to the search" if query else "Search the archive"
    parts.append(f'<footer><a href="{esc(back)}">\u2190 {label}</a></footer>')
    return layout(f"{article.title} · newsdesk", "\n".join(parts), root=root)


def message_page(status: int, heading: str, message: str, *, root: str = "/") -> str:
    body = (
        f"<h1>{esc(heading)}</h1><p>{esc(message)}</p>{search_form(root)}"
        f'<footer><a href="{esc(root)}">\u2190 Search the archive</a></footer>'
    )
    return layout(f"{status} {heading} · newsdesk", body, root=root)

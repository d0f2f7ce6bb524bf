"""The rules a knowledge passage's values must follow, as plain functions returning the reason or None.

Kept apart from the pydantic models (``knowledge_schema``) so that tests, the CLI and the shipped
knowledge checks can ask the same questions ("is this URL a page?", "is this a repost?").
"""

from __future__ import annotations

import re
import reprlib
from urllib.parse import parse_qsl, urlparse

from bot.core.text import count_sentences

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_TEXT_CHARS = 900
MAX_SENTENCES = 5
MAX_QUOTED_CHARS = 80
REPOST_SHARE_LIMIT = 0.10

# Reposts, aggregators, AI digests, scrapers, proxies and mirrors seen in place of the original report.
# A passage citing one must say so with ``source.repost: true`` (and name the original in ``publisher``).
AGGREGATOR_DOMAINS = frozenset({
    "aliensandspace.com", "asorat.com", "axisblade.com", "brief.news", "circularsymphony.com", "civicbeacon.app",
    "corata.org", "daylila.com", "derechos.org", "devdiscourse.com", "docslib.org", "earthndbeyond.com",
    "factoringstartup.com", "flyingtomars.com", "friendlywiki.com", "govly.com", "helium3.space",
    "ideasanddiscoveries.online", "menafn.com", "msn.com", "msnbctv.news", "namibianewsdigest.com",
    "news.hanna-ai.com", "news.repithwin.com", "news.solartex.co", "newser.com", "newsflash.one",
    "newshorizondaily.com", "nina.az", "onegiantleapaustralia.com", "pakistanpoint.com", "pledgetimes.com",
    "potomacofficersclub.com", "rushbulletin.com", "russialist.org", "sbynews.com", "scribd.com",
    "soylentnews.org", "starconnectmedia.com", "suranmc.com", "tellerreport.com", "todayheadline.co",
    "urdupoint.com", "vividheadlines.com", "vuink.com", "weblioph.com", "wikimili.com", "wikiwand.com",
    "www1.ru", "yahoo.com",
})

TRACKING_PARAMETERS = frozenset({
    "ref_src", "ref", "itid", "fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid",
    "_ga", "cmpid", "smid",
})
_FEED_SEGMENTS = frozenset({"feed", "feeds", "rss", "atom"})
_FEED_SUFFIXES = (".rss", ".atom")
# An XML file is a feed when its name says so (rss.xml, feed.xml, atom.xml, sitemap.xml); other XML
# documents, such as the UN Treaty Collection's status pages, render as pages.
_XML_FEED_NAME = re.compile(r"(?:^|[\W_])(?:rss|feed|atom|sitemap)[\w-]*\.xml$")
_POST_ID_PARAMETERS = frozenset({"p", "page_id"})

_PLACEHOLDER_PHRASES = re.compile(
    r"\b(?:(?:exact\s+)?(?:headline|title)\s+(?:not\s+(?:captured|known|found|recorded)|unknown|missing|tbd)"
    r"|not\s+captured|unknown\s+(?:headline|title)|no\s+(?:headline|title)|untitled|placeholder|lorem\s+ipsum)\b",
    re.IGNORECASE,
)
_PLACEHOLDER_MARKERS = re.compile(
    r"\b(?:TBD|TBA|TODO|FIXME|XXX)\b|\[\s*(?:title|headline|\.\.\.|…)?\s*\]|<\s*title\s*>", re.IGNORECASE
)
# "TASS report on ...", "RTHK report from Hong Kong on ...", "TASS report: ...": a description, not a headline.
# Words before "report" must be capitalised (a publisher's name), so "NASA releases report on" passes.
_DESCRIBED_PAGE = re.compile(
    r"^(?:[Tt]he\s+)?(?:[A-Z0-9][\w.&'’-]*\s+){1,4}"
    r"(?i:report|article|story|coverage|dispatch|item)s?(?:\s+(?i:on|about|from)\b|\s*:)"
)
_ISO_DATE_IN_BRACKETS = re.compile(r"\(\s*(?:[a-z ]+\s)?\d{4}-\d{2}-\d{2}\s*\)", re.IGNORECASE)


def quote(value: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """``value`` in single quotes, cut to ``limit`` characters with an ellipsis: safe in any message."""
    text = value if isinstance(value, str) else _SHORT_REPR.repr(value)  # never renders a big value whole
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"'{text}'"


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxlist, _SHORT_REPR.maxdict, _SHORT_REPR.maxstring = 3, 6, 6, MAX_QUOTED_CHARS


def placeholder_title_problem(title: str) -> str | None:
    """Why ``title`` looks like a placeholder or a description rather than a real headline, or None."""
    stripped = title.strip()
    if re.fullmatch(r"[\W_]*", stripped):
        return "is not a headline"
    if stripped.lower().startswith(("http://", "https://", "www.")):
        return "is a web address, not the page's headline"
    if _PLACEHOLDER_PHRASES.search(stripped) or _PLACEHOLDER_MARKERS.search(stripped):
        return "is a placeholder; use the page's real headline"
    if _DESCRIBED_PAGE.match(stripped):
        return "describes the page ('X report on ...') instead of giving its real headline"
    if _ISO_DATE_IN_BRACKETS.search(stripped):
        return "carries a bracketed date, which headlines do not; use the page's real headline"
    return None


def url_problem(url: str) -> str | None:
    """Why ``url`` is not the address of a web page a reader can open, or None."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or any(c.isspace() for c in url):
        return "is not an http(s) URL"
    path = parsed.path.lower()
    segments = [segment for segment in path.split("/") if segment]
    query = parse_qsl(parsed.query, keep_blank_values=True)
    if "setlocale" in path or any(key.lower() == "setlocale" for key, _ in query):
        return "is a setLocale redirect, not the page itself"
    if (_FEED_SEGMENTS.intersection(segments) or path.endswith(_FEED_SUFFIXES)
            or _XML_FEED_NAME.search(segments[-1] if segments else "") or _asks_for_a_feed(query)):
        return "is an RSS/Atom feed, not a page"
    if path in ("", "/") and any(key in _POST_ID_PARAMETERS and value.isdigit() for key, value in query):
        return "is a bare post id (?p=123); use the page's permalink"
    tracking = sorted({key for key, value in query if _is_tracking(key, value)})
    if tracking:
        return f"carries tracking parameters ({', '.join(tracking)[:MAX_QUOTED_CHARS]}); remove them"
    return None


def _asks_for_a_feed(query: list[tuple[str, str]]) -> bool:
    return any(key.lower() in ("feed", "format") and value.lower().startswith(("rss", "atom")) for key, value in query)


def _is_tracking(key: str, value: str) -> bool:
    key = key.lower()
    return key.startswith("utm_") or key in TRACKING_PARAMETERS or (key == "from" and value.lower() == "rss")


def source_domain(url: str) -> str:
    host = (urlparse(url).hostname or "").lower()
    return host.removeprefix("www.")


def is_aggregator(url: str) -> bool:
    """Whether ``url`` is on a known repost, aggregator, scraper or proxy site (or a subdomain of one)."""
    host = source_domain(url)
    return any(host == domain or host.endswith("." + domain) for domain in AGGREGATOR_DOMAINS)


def passage_text_problem(text: str) -> str | None:
    if len(text) > MAX_TEXT_CHARS:
        return f"{len(text)} characters; at most {MAX_TEXT_CHARS}"
    sentences = count_sentences(text)
    if sentences > MAX_SENTENCES:
        return f"{sentences} sentences; at most {MAX_SENTENCES}"
    return None


def correction_problem(statement: str) -> str | None:
    """A ``corrects`` entry is one sentence that starts with its subject and ends with a period."""
    if not statement.endswith("."):
        return f"{quote(statement)} must end with a period"
    if not (statement[0].isupper() or statement[0].isdigit()):
        return f"{quote(statement)} must start with its subject (a capital letter or a number)"
    if count_sentences(statement) != 1:
        return f"{quote(statement)} must be one sentence"
    return None

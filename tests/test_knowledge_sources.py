"""Citations that hold up: real headlines, addresses that are pages, reposts marked and counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot import cli
from bot.core.knowledge import load_knowledge
from bot.core.knowledge_rules import is_aggregator, placeholder_title_problem, url_problem
from bot.core.models import ValidationIssue
from tests.support.kb import DEBRIS, mini_documents, passage, write_documents

MOON = "moon-2020-10-artemis-accords-signed"

PLACEHOLDER_TITLES = [
    "TASS report on the Roscosmos-CNSA lunar station memorandum",
    "Global Times report on Wu Weiren's ILRS remarks",
    "TASS report from New York, 2 August 2025, on ISS deorbit cooperation",
    "TASS report: Chang'e 6 lands on the far side of the Moon",
    "Hanna AI News report on the Shenzhou-23 year-long mission (May 2026)",
    "Russia and China sign a memorandum (exact headline not captured)",
    "Headline not captured",
    "Untitled",
    "[title]",
    "TBD",
    "Roscosmos statement (2025-04-23)",
    "https://tass.com/science/1",
]
REAL_HEADLINES = [
    "Russia to decide on withdrawal from ISS",
    "NASA releases report on ISS risks",
    "NASA orders Falcon Heavy to launch Lunar Gateway's HALO & PPE together…as Falcon Heavy looks likely",
    "Report on the Outer Space Treaty's fiftieth anniversary",
    "Russia commits to the ISS until 2028 (update)",
]
NOT_PAGES = {
    "https://english.aaj.tv/feeds/news/330457308": "feed",
    "https://example.org/space/feed/": "feed",
    "https://example.org/rss/news.rss": "feed",
    "https://tass.com/rss/v2.xml": "feed",
    "https://example.org/news/feed.xml": "feed",
    "https://example.org/atom.xml": "feed",
    "https://example.org/sitemap-news.xml": "feed",
    "https://example.org/?feed=rss2": "feed",
    "https://openaccess.ludovika.hu/nke/user/setLocale/en?source=%2Fbook%2F95": "setLocale",
    "https://rushbulletin.com/?p=2658": "post id",
    "https://example.org/?page_id=12": "post id",
    "https://www.scmp.com/news/article/3207955/esa-no-plans?utm_source=rss_feed": "utm_source",
    "https://nasawatch.com/biden-space/norms/?ref_src=twsrc%5Etfw": "ref_src",
    "https://www.washingtonpost.com/technology/2022/11/15/artemis/?itid=lk_inline_manual_135": "itid",
    "https://example.org/a?fbclid=IwAR0": "fbclid",
    "https://example.org/a?gclid=x1": "gclid",
    "https://example.org/a?ref=homepage": "ref",
    "https://soylentnews.org/article.pl?sid=21/03/24/0346234&from=rss": "from",
}
PAGES = [
    "https://tass.com/science/1568843",
    "https://www.nasa.gov/news-release/nasa-welcomes-norway/",
    "https://forum.example.org/viewtopic.php?p=123",
    "https://soylentnews.org/article.pl?sid=21/03/24/0346234",
    "https://www.reuters.com/science/feeding-astronauts-2024-01-02/",
    "https://spacenews.com/russia-rss-module-plans/",
    "https://treaties.un.org/doc/Publication/MTDSG/Volume%20II/Chapter%20XXIV/XXIV-2.en.xml",
]


def _errors(tmp_path: Path, documents: dict[str, dict[str, Any]]) -> list[ValidationIssue]:
    result = load_knowledge(write_documents(tmp_path / "kb", documents))
    assert not result.ok
    return result.errors


@pytest.mark.parametrize("title", PLACEHOLDER_TITLES)
def test_placeholder_source_title_is_rejected_quoting_it(tmp_path: Path, title: str) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)["source"]["title"] = title
    errors = _errors(tmp_path, documents)
    assert [(e.passage, e.field) for e in errors] == [(DEBRIS, "source.title")]
    assert title[:40] in errors[0].message


@pytest.mark.parametrize("title", PLACEHOLDER_TITLES[:6])
def test_placeholder_passage_title_is_rejected(tmp_path: Path, title: str) -> None:
    documents = mini_documents()
    passage(documents, MOON)["title"] = title
    errors = _errors(tmp_path, documents)
    assert [(e.passage, e.field) for e in errors] == [(MOON, "title")]


@pytest.mark.parametrize("title", REAL_HEADLINES)
def test_real_headlines_are_accepted(title: str) -> None:
    assert placeholder_title_problem(title) is None


@pytest.mark.parametrize(("url", "reason"), NOT_PAGES.items(), ids=list(NOT_PAGES.values()))
def test_url_that_is_not_a_page_is_rejected_saying_why(tmp_path: Path, url: str, reason: str) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)["source"]["url"] = url
    if is_aggregator(url):
        passage(documents, DEBRIS)["source"]["repost"] = True
    errors = _errors(tmp_path, documents)
    assert [(e.passage, e.field) for e in errors] == [(DEBRIS, "source.url")]
    assert reason in errors[0].message


@pytest.mark.parametrize("url", PAGES)
def test_page_urls_are_accepted(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    "url", ["https://www.urdupoint.com/en/technology/russia-iss.html", "https://news.weblioph.com/a/1",
            "https://vuink.com/post/fcnprarjf-pbz"],
)
def test_known_repost_site_requires_repost_true(tmp_path: Path, url: str) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)["source"]["url"] = url
    errors = _errors(tmp_path, documents)
    assert [(e.passage, e.field) for e in errors] == [(DEBRIS, "source.repost")]
    passage(documents, DEBRIS)["source"]["repost"] = True
    result = load_knowledge(write_documents(tmp_path / "fixed", documents))
    assert result.ok, [str(e) for e in result.errors]


def test_a_site_merely_named_like_a_repost_site_is_not_one() -> None:
    assert not is_aggregator("https://notvuink.com/a")
    assert is_aggregator("https://sub.vuink.com/a")


def test_stats_count_reposts_unchecked_and_not_found(tmp_path: Path) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)["source"]["repost"] = True
    passage(documents, MOON)["checked"] = "2026-01-05"
    result = load_knowledge(write_documents(tmp_path / "kb", documents))
    assert result.ok
    stats = result.stats
    assert (stats.passages, stats.reposts, stats.unchecked, stats.not_found) == (7, 1, 6, 0)
    assert stats.repost_share == pytest.approx(1 / 7)


def test_repost_share_at_or_over_ten_percent_is_a_warning(tmp_path: Path, mini_kb_dir: Path) -> None:
    assert load_knowledge(mini_kb_dir).warnings == []
    documents = mini_documents()
    passage(documents, DEBRIS)["source"]["repost"] = True
    result = load_knowledge(write_documents(tmp_path / "kb", documents))
    assert result.ok
    assert [(w.field, "14.3%" in w.message) for w in result.warnings] == [("source.repost", True)]


def test_validate_prints_repost_share_unchecked_and_not_found_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)["source"]["repost"] = True
    passage(documents, MOON)["checked"] = "2026-01-05"
    assert cli.main(["validate", str(write_documents(tmp_path / "kb", documents))]) == 0
    out = capsys.readouterr().out
    assert "1 of 7 passages (14.3%) cite a repost" in out
    assert "6 without 'checked'" in out
    assert "0 with 'source.found: false'" in out
    assert out.splitlines()[-1].startswith("ok: ")


@pytest.mark.parametrize(
    ("field_path", "value"),
    [("url", "https://example.org/" + "a" * 5000 + "?utm_source=x"), ("title", "TBD " + "x" * 5000)],
)
def test_values_quoted_in_messages_are_cut_to_80_characters(tmp_path: Path, field_path: str, value: str) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)["source"][field_path] = value
    errors = _errors(tmp_path, documents)
    assert len(errors) == 1
    assert "…" in errors[0].message
    assert len(errors[0].message) < 250


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("date", "2022-" + "9" * 5000), ("kind", "k" * 5000), ("tags", [["nested"] * 2000]),
     ("supersedes", ["x" * 5000]), ("x" * 5000, "unknown field with a long name")],
    ids=["date", "kind", "tags", "supersedes", "long-key"],
)
def test_every_issue_stays_short_whatever_the_value(tmp_path: Path, field_name: str, value: object) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)[field_name] = value
    errors = _errors(tmp_path, documents)
    assert errors
    assert all(len(str(e)) < 400 for e in errors), [str(e)[:500] for e in errors]

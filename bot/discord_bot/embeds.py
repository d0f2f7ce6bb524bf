"""Embeds for answers, passages, topics and knowledge-base reports, always within Discord's limits.

Every builder here ends with :func:`fit_embed`, the one place that enforces the limits, so an
embed stays sendable whatever the knowledge files hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import discord

from bot.core.models import Answer, EngineStatus, Passage, ReloadReport, TopicSummary

if TYPE_CHECKING:
    from bot.storage.records import Heartbeat

TITLE_LIMIT: Final = 256
DESCRIPTION_LIMIT: Final = 4096
FIELD_LIMIT: Final = 25
FIELD_NAME_LIMIT: Final = 256
FIELD_VALUE_LIMIT: Final = 1024
FOOTER_LIMIT: Final = 2048
AUTHOR_LIMIT: Final = 256
TOTAL_LIMIT: Final = 6000

MAX_PROCESS_LINES: Final = 8  # a line is about 100 characters; a field holds 1024

ELLIPSIS: Final = "…"
BLANK: Final = "\u200b"  # Discord rejects empty field names and values

ANSWER_COLOUR: Final = discord.Colour.blurple()
DECLINED_COLOUR: Final = discord.Colour.light_grey()
OK_COLOUR: Final = discord.Colour.green()
FAIL_COLOUR: Final = discord.Colour.red()

DECLINED_TITLE: Final = "I only answer space-policy questions, and found nothing close"
#: One title per decline reason (``Answer.decline_reason``); DECLINED_TITLE when there is none.
DECLINE_TITLES: Final[dict[str, str]] = {
    "not_a_question": "Hi! Ask me a space-policy question",
    "out_of_scope": "That's not something I cover: I answer space-policy questions",
    "not_covered": "Not covered yet",
    "not_understood": "Please ask your question in full",
}
#: Shown when a decline comes without the engine's explanation (``Answer.message``).
DECLINE_FALLBACKS: Final[dict[str, str]] = {
    "not_a_question": "I answer space-policy questions from a curated, dated and cited knowledge base.",
    "not_covered": "My knowledge base does not cover that yet, so I won't guess.",
    "not_understood": "I'm not sure what that follows up on: please ask the whole question.",
}
SUGGESTION_HEADINGS: Final[dict[str, str]] = {
    "not_a_question": "Try asking:",
    "out_of_scope": "Questions I can answer:",
    "not_covered": "Nearest topics I cover:",
}
DEFAULT_SUGGESTION_HEADING: Final = "Did you mean:"
TOPICS_HINT: Final = "Use `/topics` to see everything I cover."
PREMISE_LIMIT: Final = 1000
EXPLANATION_LIMIT: Final = 2000
FOLLOW_UP_PREFIX: Final = "Following up on: "
FOLLOW_UP_LIMIT: Final = 200
#: The last part of an answer's footer; an embed with it is an answer whose title is the question.
SOURCE_HINT: Final = "/source <id> shows a passage in full"


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with an ellipsis."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[:limit]
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """Make ``embed`` satisfy every Discord embed limit, in place, and return it.

    Each part is cut to its own limit; fields past the 25th are dropped; if the total is still
    over 6000 the description is shortened first, then fields are dropped from the end.
    """
    if embed.title:
        embed.title = truncate(embed.title, TITLE_LIMIT)
    if embed.description:
        embed.description = truncate(embed.description, DESCRIPTION_LIMIT)
    if embed.footer.text:
        embed.set_footer(text=truncate(embed.footer.text, FOOTER_LIMIT), icon_url=embed.footer.icon_url)
    if embed.author.name:
        embed.set_author(
            name=truncate(embed.author.name, AUTHOR_LIMIT), url=embed.author.url, icon_url=embed.author.icon_url
        )
    while len(embed.fields) > FIELD_LIMIT:
        embed.remove_field(-1)
    for index, item in enumerate(embed.fields):
        embed.set_field_at(
            index,
            name=truncate(item.name or BLANK, FIELD_NAME_LIMIT) or BLANK,
            value=truncate(item.value or BLANK, FIELD_VALUE_LIMIT) or BLANK,
            inline=bool(item.inline),
        )
    _fit_total(embed)
    return embed


def _fit_total(embed: discord.Embed) -> None:
    excess = len(embed) - TOTAL_LIMIT
    if excess <= 0:
        return
    description = embed.description or ""
    keep = max(len(description) - excess, min(len(description), 200))
    embed.description = truncate(description, keep) or None
    while len(embed) > TOTAL_LIMIT and embed.fields:
        embed.remove_field(-1)
    if len(embed) > TOTAL_LIMIT and embed.description:
        embed.description = truncate(embed.description, len(embed.description) - (len(embed) - TOTAL_LIMIT)) or None


def _link(label: str, url: str) -> str:
    """A masked link whose label and URL cannot break the markdown."""
    safe_label = discord.utils.escape_markdown(label).replace("[", "(").replace("]", ")")
    safe_url = url.replace(" ", "%20").replace(")", "%29").replace("(", "%28")
    if not safe_url.startswith(("http://", "https://")) or len(safe_url) > FIELD_VALUE_LIMIT - 80:
        return truncate(f"{label}: {url}", FIELD_VALUE_LIMIT - 80)
    return f"[{truncate(safe_label, FIELD_VALUE_LIMIT - len(safe_url) - 80)}]({safe_url})"


def source_field_name(number: int, passage: Passage) -> str:
    return f"[{number}] {passage.source.publisher}: {passage.source.title} ({passage.date.isoformat()})"


HISTORY_TITLE_LIMIT = 110


def history_lines(history: Sequence[Passage], limit: int = FIELD_VALUE_LIMIT) -> str:
    """One dated headline per earlier position, newest first.

    When they do not all fit, the newest and the oldest are kept and the middle is elided, so the
    reader still sees where the storyline started. (``/source`` autocompletes on these titles.)
    """
    lines = [f"**{p.date.isoformat()}** {truncate(p.title, HISTORY_TITLE_LIMIT)}" for p in history]
    for keep in range(len(lines), 0, -1):
        newest, oldest = lines[: (keep + 1) // 2], lines[len(lines) - keep // 2 :]
        elided = len(lines) - keep
        text = "\n".join([*newest, f"… {elided} more …", *oldest] if elided else lines)
        if len(text) <= limit:
            return text
    return truncate(lines[0], limit) if lines else ""


def premise_line(answer: Answer) -> str:
    """The correction of a false premise, in bold, or "" (it goes first, above the lead)."""
    if answer.premise is None or not answer.premise.note.strip():
        return ""
    note = truncate(" ".join(answer.premise.note.split()), PREMISE_LIMIT)
    return f"**{discord.utils.escape_markdown(note)}**\n\n"


def follow_up_line(answer: Answer) -> str:
    """"-# Following up on: <earlier question>" in Discord's small print, or "" when the question
    stood on its own (it goes first, above the premise note and the lead)."""
    earlier = " ".join((answer.context_used or "").split())
    if not earlier:
        return ""
    return f"-# {FOLLOW_UP_PREFIX}{discord.utils.escape_markdown(truncate(earlier, FOLLOW_UP_LIMIT))}\n"


def asked_question(embed: discord.Embed) -> str | None:
    """The question an answer embed answers (its title), or None for any other embed.

    Lets a reply to an answer the bot no longer remembers (after a restart) still follow up on it.
    """
    footer = embed.footer.text or ""
    title = (embed.title or "").strip()
    return title if title and footer.endswith(SOURCE_HINT) else None


def answer_footer(answer: Answer) -> str:
    parts = [f"Knowledge base {answer.kb_version}"]
    if answer.confidence > 0:
        parts.append(f"confidence {answer.confidence:.2f}")
    parts.append(SOURCE_HINT)
    return truncate(" · ".join(parts), 256)


def answer_embed(answer: Answer, *, scope: str) -> discord.Embed:
    """The reply to a question: a premise correction if any, the lead with source markers, sources,
    earlier positions.

    Within the 6000-character total, the title, footer, premise note, first source and earlier
    positions are kept; the lead gets what is left (it is short in practice), then further sources
    while they fit.
    """
    if not answer.answered or not answer.passages:
        return declined_embed(answer, scope=scope)
    title = truncate(answer.question, TITLE_LIMIT) or "Answer"
    footer = answer_footer(answer)
    sources = [_source_field(number, ranked.passage) for number, ranked in enumerate(answer.passages, start=1)]
    history = ("Earlier positions", truncate(history_lines(answer.history), FIELD_VALUE_LIMIT))
    kept = [sources[0], history] if answer.history else [sources[0]]
    fixed = len(title) + len(footer) + sum(len(name) + len(value) for name, value in kept)
    premise, markers = follow_up_line(answer) + premise_line(answer), " [1]"
    room = min(DESCRIPTION_LIMIT, TOTAL_LIMIT - fixed) - len(premise) - len(markers)
    description = premise + truncate(answer.lead, room) + markers
    budget = TOTAL_LIMIT - fixed - len(description)
    fields = [sources[0]]
    for name, value in sources[1 : FIELD_LIMIT - len(kept) + 1]:
        if len(name) + len(value) > budget:
            break
        budget -= len(name) + len(value)
        fields.append((name, value))
    if answer.history:
        fields.append(history)
    embed = discord.Embed(title=title, description=description, colour=ANSWER_COLOUR)
    for name, value in fields:
        embed.add_field(name=name, value=value, inline=False)
    embed.set_footer(text=footer)
    return fit_embed(embed)


def _source_field(number: int, passage: Passage) -> tuple[str, str]:
    name = truncate(source_field_name(number, passage), FIELD_NAME_LIMIT)
    value = truncate(f"{_link(passage.source.title, passage.source.url)} · passage `{passage.id}`", FIELD_VALUE_LIMIT)
    return name, value


def decline_title(answer: Answer) -> str:
    return DECLINE_TITLES.get(answer.decline_reason or "", DECLINED_TITLE)


def declined_embed(answer: Answer, *, scope: str) -> discord.Embed:
    """A decline, titled by its reason: the engine's explanation (or, without one, what the bot
    covers), up to three suggestions (example questions or the nearest topics) and the /topics hint."""
    reason = answer.decline_reason
    explanation = answer.message.strip() or DECLINE_FALLBACKS.get(reason or "", "") or scope.strip()
    parts = [follow_up_line(answer).strip(), premise_line(answer).strip(), truncate(explanation, EXPLANATION_LIMIT)]
    if answer.suggestions:
        tips = "\n".join(f"• {truncate(s, 300)}" for s in answer.suggestions[:3])
        parts.append(f"**{SUGGESTION_HEADINGS.get(reason or '', DEFAULT_SUGGESTION_HEADING)}**\n{tips}")
    if "/topics" not in explanation:
        parts.append(TOPICS_HINT)
    embed = discord.Embed(
        title=decline_title(answer),
        description="\n\n".join(part for part in parts if part) or None,
        colour=DECLINED_COLOUR,
    )
    if answer.kb_version:
        embed.set_footer(text=f"Knowledge base {answer.kb_version}")
    return fit_embed(embed)


def passage_embed(passage: Passage, *, kb_version: str | None = None) -> discord.Embed:
    """One passage in full, with its citation."""
    embed = discord.Embed(title=passage.title, description=passage.text, colour=ANSWER_COLOUR)
    embed.add_field(
        name=f"{passage.source.publisher}: {passage.source.title} ({passage.date.isoformat()})",
        value=_link(passage.source.title, passage.source.url),
        inline=False,
    )
    embed.add_field(name="Topic", value=passage.topic, inline=True)
    if passage.tags:
        embed.add_field(name="Tags", value=", ".join(passage.tags), inline=True)
    if passage.supersedes:
        embed.add_field(name="Supersedes", value=", ".join(f"`{p}`" for p in passage.supersedes), inline=True)
    footer = f"Passage {passage.id}"
    if kb_version:
        footer += f" · knowledge base {kb_version}"
    embed.set_footer(text=footer)
    return fit_embed(embed)


def topics_embed(topics: Sequence[TopicSummary], *, kb_version: str | None = None) -> discord.Embed:
    total = sum(t.count for t in topics)
    lines = [f"**{t.title}** (`{t.slug}`): {t.count} passage{'s' if t.count != 1 else ''}" for t in topics]
    embed = discord.Embed(
        title=f"Topics ({len(topics)}, {total} passages)",
        description="\n".join(lines) or "The knowledge base has no topics yet.",
        colour=ANSWER_COLOUR,
    )
    if kb_version:
        embed.set_footer(text=f"Knowledge base {kb_version}")
    return fit_embed(embed)


def _id_list(ids: Sequence[str]) -> str:
    if not ids:
        return "none"
    shown = ", ".join(f"`{i}`" for i in ids)
    return truncate(shown, FIELD_VALUE_LIMIT)


def _issue_lines(issues: Sequence[object], limit: int) -> str:
    lines: list[str] = []
    used = 0
    for index, issue in enumerate(issues):
        line = f"• {truncate(str(issue), 500)}"
        more = f"… and {len(issues) - index} more"
        if used + len(line) + 1 > limit - len(more) - 1:
            lines.append(more)
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def reload_embed(report: ReloadReport) -> discord.Embed:
    """The private reply to ``/kb reload``: the diff on success, every error on failure."""
    if report.ok:
        embed = discord.Embed(
            title=f"Knowledge base reloaded: {report.kb_version}",
            description=(
                f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed, "
                f"{report.reused} reused, in {report.duration_s:.2f} s."
            ),
            colour=OK_COLOUR,
        )
        embed.add_field(name="Added", value=_id_list(report.added), inline=False)
        embed.add_field(name="Changed", value=_id_list(report.changed), inline=False)
        embed.add_field(name="Removed", value=_id_list(report.removed), inline=False)
    else:
        embed = discord.Embed(
            title=f"Reload failed: still serving {report.kb_version}",
            description=(
                f"{len(report.errors)} error{'s' if len(report.errors) != 1 else ''} in the knowledge files; "
                "nothing changed, the previous knowledge base keeps answering.\n\n"
            ),
            colour=FAIL_COLOUR,
        )
        room = DESCRIPTION_LIMIT - len(embed.description or "")
        embed.description = (embed.description or "") + _issue_lines(report.errors, room)
    if report.warnings:
        embed.add_field(
            name=f"Warnings ({len(report.warnings)})",
            value=_issue_lines(report.warnings, FIELD_VALUE_LIMIT),
            inline=False,
        )
    if report.actor:
        embed.set_footer(text=f"Requested by {report.actor} · {report.duration_s:.2f} s")
    return fit_embed(embed)


def _ago(when: dt.datetime, now: dt.datetime) -> str:
    seconds = max(0, int((now - when).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def status_embed(
    status: EngineStatus, *, now: dt.datetime | None = None, processes: Sequence[Heartbeat] | str | None = None,
    this_process: str | None = None,
) -> discord.Embed:
    """The private reply to ``/kb status``; ``processes``: every process's heartbeat, or why there are none."""
    now = now or dt.datetime.now(dt.UTC)
    started = status.started_at if status.started_at.tzinfo else status.started_at.replace(tzinfo=dt.UTC)
    embed = discord.Embed(title="Knowledge base status", colour=ANSWER_COLOUR)
    embed.add_field(name="KB version", value=status.kb_version or "unknown", inline=True)
    embed.add_field(name="Passages", value=f"{status.passage_count} in {status.topic_count} topics", inline=True)
    embed.add_field(name="Model", value=f"{status.model_name} ({status.encoder})", inline=False)
    embed.add_field(name="Index", value=f"{status.index_kind}, {status.index_size_bytes / 1024:.1f} KiB", inline=True)
    if status.last_reload_at is not None:
        when = status.last_reload_at
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        by = f" by {status.last_reload_by}" if status.last_reload_by else ""
        reload_text = f"{discord.utils.format_dt(when, 'f')} ({_ago(when, now)} ago){by}"
    else:
        reload_text = "not since start"
    embed.add_field(name="Last reload", value=reload_text, inline=False)
    embed.add_field(name="Uptime", value=_ago(started, now), inline=True)
    latency = "no answers yet" if status.median_latency_ms is None else f"{status.median_latency_ms:.1f} ms"
    embed.add_field(name="Median answer latency", value=latency, inline=True)
    if isinstance(processes, str):
        embed.add_field(name="Processes", value=processes, inline=False)
    elif processes is not None:
        embed.add_field(name=f"Processes ({len(processes)})", value=process_lines(processes, this_process, now),
                        inline=False)
    return fit_embed(embed)


def process_lines(processes: Sequence[Heartbeat], this_process: str | None, now: dt.datetime) -> str:
    """One line per process: its id, shards, kb_version and how long ago it last reported."""
    if not processes:
        return "none has reported yet"
    lines = []
    listed = sorted(processes, key=lambda beat: (beat.process_id != this_process, beat.process_id))  # this one first
    for beat in listed[:MAX_PROCESS_LINES]:
        shards = f"shards {', '.join(map(str, beat.shard_ids))}" if beat.shard_ids else "unsharded"
        marker = " (this one)" if beat.process_id == this_process else ""
        lines.append(f"`{beat.process_id}`{marker} · {shards} · `{beat.kb_version or 'loading'}` · "
                     f"{_ago(beat.last_seen, now)} ago")
    if len(processes) > MAX_PROCESS_LINES:
        lines.append(f"and {len(processes) - MAX_PROCESS_LINES} more")
    return truncate("\n".join(lines), FIELD_VALUE_LIMIT)

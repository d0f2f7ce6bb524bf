"""The storage layer's value types: what the shells pass in and get back (no ORM object leaves it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

VoteKind = Literal["helpful", "wrong", "outdated", "bad_source"]
ReportStatus = Literal["open", "resolved", "dismissed"]
GapReason = Literal["not_covered", "low_confidence"]
# Every question has one outcome: answered, or the engine's decline reason.
Outcome = Literal["answered", "not_a_question", "out_of_scope", "not_covered", "not_understood"]
AnswerMentions = Literal["all", "listed", "none"]

VOTE_KINDS: tuple[VoteKind, ...] = get_args(VoteKind)
REPORT_KINDS: tuple[VoteKind, ...] = ("wrong", "outdated", "bad_source")  # votes a moderator reviews
REPORT_STATUSES: tuple[ReportStatus, ...] = get_args(ReportStatus)
GAP_REASONS: tuple[GapReason, ...] = get_args(GapReason)
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
ANSWER_MENTIONS: tuple[AnswerMentions, ...] = get_args(AnswerMentions)
CountKey = tuple[Outcome, int | None, str | None]  # outcome, guild id, lead topic


@dataclass(frozen=True)
class NewGap:
    """A question the bot could not answer well, to store (see ``Storage.record_answers``)."""

    question: str
    reason: GapReason
    guild_id: int | None = None
    topics: tuple[str, ...] = ()
    vector: Any = None  # the encoder's vector (a sequence of floats), or None: grouped by words only
    confidence: float | None = None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (ISO dates, lists): what ``--format json`` prints."""
        return _jsonable(asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class FeedbackVote(_Record):
    """A click on an answer's feedback button, as the shell knows it (the raw user id is hashed, never stored)."""

    message_id: int
    user_id: int
    vote: VoteKind
    question: str
    lead_passage_id: str | None
    passage_ids: tuple[str, ...]
    kb_version: str
    guild_id: int | None = None
    channel_id: int | None = None
    message_link: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if self.vote not in VOTE_KINDS:
            raise ValueError(f"vote must be one of {', '.join(VOTE_KINDS)}, not {self.vote!r}")


@dataclass(frozen=True)
class FeedbackReport(_Record):
    id: int
    message_id: int
    question: str | None
    lead_passage_id: str | None
    passage_ids: tuple[str, ...]
    kb_version: str
    guild_id: int | None
    channel_id: int | None
    message_link: str | None
    created_at: dt.datetime
    vote: VoteKind
    note: str | None
    status: ReportStatus
    resolution_note: str | None = None
    fixed_in: str | None = None
    resolved_at: dt.datetime | None = None


@dataclass(frozen=True)
class VoteResult(_Record):
    """What ``record_feedback`` did: the stored report, and the reporter's earlier vote it replaced, if any."""

    report: FeedbackReport
    previous_vote: VoteKind | None

    @property
    def is_new_report(self) -> bool:
        """A Wrong/Outdated/Bad source vote that was not already this reporter's vote: worth a log-channel post."""
        return self.report.vote in REPORT_KINDS and self.previous_vote != self.report.vote


@dataclass(frozen=True)
class GapGroup(_Record):
    """Similar unanswered questions: the most typical one (the medoid), how many, first and last seen."""

    question: str
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    examples: tuple[str, ...] = ()  # a few other wordings, most typical first
    topics: tuple[str, ...] = ()  # the nearest topics most often suggested
    reasons: dict[str, int] = field(default_factory=dict)  # not_covered / low_confidence counts


@dataclass(frozen=True)
class Stats(_Record):
    since: dt.datetime
    questions: int
    answered: int
    declined: dict[str, int]  # decline reason -> count
    votes: dict[str, int]  # vote kind -> count
    helpful_rate: float | None  # helpful votes / all votes; None without votes
    open_reports: int
    gaps: int
    top_topics: tuple[tuple[str, int], ...]  # lead topics of answered questions
    top_reported_passages: tuple[tuple[str, int], ...]  # lead passages of Wrong/Outdated/Bad source reports


@dataclass(frozen=True)
class GuildSettings(_Record):
    """One server's settings; a server never configured gets these defaults."""

    guild_id: int
    answer_mentions: AnswerMentions = "all"
    mention_channel_ids: tuple[int, ...] = ()
    ephemeral_default: bool = False
    moderator_role_ids: tuple[int, ...] = ()
    feedback_buttons: bool = True
    log_channel_id: int | None = None
    answer_every_thread_message: bool = False  # in a thread started from a bot answer: answer without a mention

    def __post_init__(self) -> None:
        if self.answer_mentions not in ANSWER_MENTIONS:
            choices = ", ".join(ANSWER_MENTIONS)
            raise ValueError(f"answer_mentions must be one of {choices}, not {self.answer_mentions!r}")

    def answers_mentions_in(self, channel_id: int) -> bool:
        """Whether a mention in this channel gets an answer."""
        if self.answer_mentions == "listed":
            return channel_id in self.mention_channel_ids
        return self.answer_mentions == "all"


@dataclass(frozen=True)
class Heartbeat(_Record):
    process_id: str
    host: str
    shard_ids: tuple[int, ...]
    kb_version: str | None
    started_at: dt.datetime
    last_seen: dt.datetime


@dataclass(frozen=True)
class PurgeReport(_Record):
    gaps_purged: int
    reports_anonymised: int

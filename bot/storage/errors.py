"""The storage layer's exceptions: a shell turns these into "not recorded" for the user."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error the storage layer raises on purpose."""


class StorageUnavailableError(StorageError):
    """The database could not be reached, failed, or took longer than ``SPACEBOT_DATABASE_TIMEOUT``."""


class FeedbackNotFoundError(StorageError, LookupError):
    """No feedback report has this id."""

    def __init__(self, report_id: int) -> None:
        super().__init__(f"no feedback report #{report_id}")
        self.report_id = report_id


def describe(exc: BaseException) -> str:
    """One line: the exception's type and first line (a driver's message can span a page)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__

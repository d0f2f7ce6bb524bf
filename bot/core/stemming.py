"""A crude suffix strip, enough to match "signed" with "sign" and "stations" with "station"."""

from __future__ import annotations

_SUFFIXES = ("ing", "ed", "es", "s")
MIN_STEM = 4


def stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
            return word[: -len(suffix)]
    return word

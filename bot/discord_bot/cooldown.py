"""A per-user cooldown shared by ``/ask``, the context menu and mentions."""

from __future__ import annotations

import time

from discord.app_commands import Cooldown


class UserCooldown:
    """``rate`` questions per ``per`` seconds for each user, whichever way they ask."""

    _PRUNE_AT = 4096

    def __init__(self, rate: int, per: float) -> None:
        self.rate = rate
        self.per = per
        self._buckets: dict[int, Cooldown] = {}

    def hit(self, user_id: int, now: float | None = None) -> float | None:
        """Count one question; return the seconds to wait if the user is over the limit."""
        now = time.time() if now is None else now
        if len(self._buckets) >= self._PRUNE_AT:
            self._prune(now)
        bucket = self._buckets.setdefault(user_id, Cooldown(self.rate, self.per))
        return bucket.update_rate_limit(now)

    def _prune(self, now: float) -> None:
        idle = [uid for uid, bucket in self._buckets.items() if bucket.get_tokens(now) >= self.rate]
        for uid in idle:
            del self._buckets[uid]


def cooldown_notice(retry_after: float) -> str:
    seconds = max(1, round(retry_after))
    return f"You're asking faster than I can keep up. Try again in {seconds} s."

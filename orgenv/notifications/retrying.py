"""When to try again: exponential backoff with jitter, for about a day. Pure."""

from __future__ import annotations

import random
from datetime import timedelta

# After the first try: 30 s, 1 min, 2 min, … doubling up to 6 h between tries; with the
# jitter (each wait drawn between half and all of it) about 14 tries fit in the day.
BASE = timedelta(seconds=30)
CAP = timedelta(hours=6)
WINDOW = timedelta(hours=24)


def backoff(
    attempts: int,
    *,
    base: timedelta = BASE,
    cap: timedelta = CAP,
    rand: random.Random | None = None,
) -> timedelta:
    """The wait before the try after `attempts` failed ones (1 or more): base·2^(n-1), at
    most `cap`, drawn uniformly between half and all of it, so that the endpoints and
    mails that failed together do not come back together."""
    full = min(cap, base * 2 ** max(0, attempts - 1))
    return full * (0.5 + 0.5 * (rand or random).random())

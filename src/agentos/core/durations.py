"""Durations as people write them: `90s`, `20m`, `1h`, `1h30m`, or plain seconds."""

from __future__ import annotations

import math
import re
import time

from agentos.core.errors import ConfigError

_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
MAX_SECONDS = 7 * 24 * 3600.0


def parse_duration(text: str | int | float) -> float:
    """Seconds in `text`. Raises ValueError with the accepted forms on anything else."""
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}: use e.g. 90s, 20m, 1h, 1h30m or seconds")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        value = text.strip().lower().replace(" ", "")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
            if value and len(value) <= 32 and _PART.sub("", value) == "":
                seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_SECONDS:
        raise ValueError(f"invalid duration {text!r}: use e.g. 90s, 20m, 1h, 1h30m or seconds (0 = no limit)")
    return seconds


def format_duration(seconds: float) -> str:
    """`45s`, `20m`, `1h30m`, `2m5s`: the form the flag takes."""
    total = round(seconds)
    if seconds < 10 and seconds != total:
        return f"{seconds:.1f}s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_AGE_UNITS = {**_UNITS, "d": 86400.0, "w": 7 * 86400.0}


def parse_age(text: str) -> float:
    """`30d`, `12h`, `90m`, `2w`, `45s` -> seconds, for --older-than (no upper bound: an age,
    not a wait). ConfigError (exit 2) otherwise."""
    match = _AGE.match(text.strip())
    if not match or float(match[1]) <= 0:
        raise ConfigError(f"--older-than takes a positive age like 30d, 12h, 90m or 2w, got {text!r}")
    return float(match[1]) * _AGE_UNITS[match[2]]


def clock_time(at: float) -> str:
    """`14:03:59` local time, for a moment read from a file or a provider: `?` when it is no
    time at all (NaN, or beyond what the platform's time_t holds)."""
    try:
        return time.strftime("%H:%M:%S", time.localtime(at))
    except (OverflowError, ValueError, OSError):
        return "?"

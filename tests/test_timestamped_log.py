"""Every line of coordinator.log and the item logs starts with a local ISO 8601 timestamp."""

import io
import re
from datetime import datetime

from agentos.engine.timestamped_log import TimestampedLog, iso_now


def test_iso_now_is_local_time_with_offset() -> None:
    stamp = iso_now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", stamp)
    assert datetime.fromisoformat(stamp).utcoffset() is not None


def test_each_line_is_stamped_once_when_it_starts() -> None:
    ticks = iter(f"T{i}" for i in range(100))
    out = io.StringIO()
    log = TimestampedLog(out, clock=lambda: next(ticks))
    log.write("first half ")
    log.write("second half\nnext")
    log.write(" line\n\nlast\n")
    assert out.getvalue() == "T0 first half second half\nT1 next line\nT2\nT3 last\n"

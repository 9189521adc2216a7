"""JSON for the files agentos writes: no API key, and no NaN or Infinity, ever.

`json.dumps` writes `Infinity` for float('inf'), which no strict JSON reader accepts
and which once poisoned the credential state file. Every writer goes through `dumps`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from agentos.core.redaction import redact, redact_data


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float inside it replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps` with `allow_nan=False` on finite, redacted data (redacted again as text:
    `default=str` may have turned an object holding a key into a string)."""
    return redact(json.dumps(finite(redact_data(value)), allow_nan=False, **kwargs))

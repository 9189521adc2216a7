"""Workspace settings in `agentos.toml`, validated strictly. Flags override them."""

from __future__ import annotations

import os
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agentos.core.durations import parse_duration
from agentos.core.errors import ConfigError
from agentos.core.pricing import Price, parse_prices
from agentos.core.redaction import register_secret
from agentos.core.workspace_files import DEFAULT_MAX_ITEM_BYTES, read_text

MAX_RPM = 1_000_000  # requests per minute: a larger number is a typo (agentos.toml and credentials files)

MAX_ITEM_BYTES_CEILING = 1 << 30  # 1 GiB: a larger limit is a typo, not a wish
MAX_OUTPUT_TOKENS_CEILING = 1_000_000

_TYPE_WORDS: dict[type | tuple[type, ...], str] = {int: "a whole number", str: "a string"}


@dataclass(frozen=True)
class Settings:
    """Every key agentos.toml accepts: the fields themselves are the list (KNOWN_KEYS)."""

    provider: str | None = None
    drafter: str | None = None
    reviewer: str | None = None
    max_iterations: int | None = None
    parallel: int | None = None
    per_key_concurrency: int | None = None
    tracker: str | None = None
    github_api_url: str | None = None
    label: str | None = None
    max_item_bytes: int | None = None
    item_timeout: str | int | float | None = None  # "20m", "1h", or seconds
    provider_timeout: str | int | float | None = None  # per HTTP call to a provider
    max_output_tokens: int | None = None  # per LLM call: caps a runaway answer's time and cost
    prices: dict[str, Price] = field(default_factory=dict)  # [prices."MODEL"] tables, parsed apart
    rpm: int | None = None  # requests per minute each key allows, where no rate-limit headers come
    backend_url: str | None = None  # [backend] url = "postgresql://user@host/db": a team's Postgres


def _scalar_types(hint: Any) -> type | tuple[type, ...]:
    """`str | int | None` -> (str, int): what an `isinstance` check of a TOML value needs."""
    members = tuple(t for t in typing.get_args(hint) if t is not type(None)) or (hint,)
    return members[0] if len(members) == 1 else members


_HINTS = typing.get_type_hints(Settings)
KNOWN_KEYS: dict[str, type | tuple[type, ...]] = {
    f.name: _scalar_types(_HINTS[f.name]) for f in fields(Settings) if f.name not in ("prices", "backend_url")
}


def load_settings(path: Path) -> Settings:
    """Read `agentos.toml` if present. Unknown keys and bad values are ConfigErrors (exit 2)."""
    if not os.path.lexists(path):
        return Settings()
    try:  # untrusted workspace data: refused by name if unsafe, before it is parsed
        text = read_text(
            path,
            path.parent,
            what="settings file",
            max_bytes=DEFAULT_MAX_ITEM_BYTES,
            errors="strict",
            limit_hint="a settings file is small",
        )
        data: dict[str, Any] = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from None
    section = data.pop("agentos", None)
    if isinstance(section, dict):
        data.update(section)
    prices = parse_prices(data.pop("prices"), str(path)) if "prices" in data else {}
    backend_url = _backend_url(data.pop("backend"), path) if "backend" in data else None
    for key, value in data.items():
        expected = KNOWN_KEYS.get(key)
        if expected is None:
            raise ConfigError(
                f"{path}: unknown setting {key!r}; known settings: "
                f"{', '.join(sorted([*KNOWN_KEYS, 'prices', 'backend']))}"
            )
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ConfigError(
                f"{path}: setting {key!r} must be {_TYPE_WORDS.get(expected, expected)}, got {value!r}"
            )
    for key in ("item_timeout", "provider_timeout"):
        if key in data:
            try:
                seconds = parse_duration(data[key])
            except ValueError as exc:
                raise ConfigError(f"{path}: setting {key!r}: {exc}") from None
            if key == "provider_timeout" and seconds <= 0:
                raise ConfigError(f"{path}: setting 'provider_timeout' must be above 0, got {data[key]!r}")
    for key in (
        "max_iterations",
        "parallel",
        "per_key_concurrency",
        "max_item_bytes",
        "max_output_tokens",
        "rpm",
    ):
        if key in data and data[key] < 1:
            raise ConfigError(f"{path}: setting {key!r} must be at least 1, got {data[key]}")
    if data.get("max_output_tokens", 0) > MAX_OUTPUT_TOKENS_CEILING:
        raise ConfigError(
            f"{path}: setting 'max_output_tokens' must be at most {MAX_OUTPUT_TOKENS_CEILING}, "
            f"got {data['max_output_tokens']}"
        )
    if data.get("rpm", 0) > MAX_RPM:
        raise ConfigError(f"{path}: setting 'rpm' must be at most {MAX_RPM}, got {data['rpm']}")
    if data.get("max_item_bytes", 0) > MAX_ITEM_BYTES_CEILING:
        raise ConfigError(
            f"{path}: setting 'max_item_bytes' must be at most {MAX_ITEM_BYTES_CEILING}, "
            f"got {data['max_item_bytes']} (default {DEFAULT_MAX_ITEM_BYTES})"
        )
    return Settings(**data, prices=prices, backend_url=backend_url)


def _backend_url(section: Any, path: Path) -> str:
    """`[backend] url`: a Postgres URL without a password (agentos.toml is a file of the
    workspace, often committed: the password comes from PGPASSWORD or ~/.pgpass)."""
    if not isinstance(section, dict) or set(section) != {"url"} or not isinstance(section["url"], str):
        raise ConfigError(f'{path}: [backend] takes one setting, url = "postgresql://user@host/db"')
    url = section["url"].strip()
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        raise ConfigError(f"{path}: [backend] url is not a URL") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"{path}: [backend] url must start with postgresql://")
    if password:
        register_secret(password, "backend-password")
        raise ConfigError(
            f"{path}: [backend] url holds a password; this file belongs to the workspace, so put the "
            "password in PGPASSWORD or ~/.pgpass and leave it out of the URL"
        )
    return url

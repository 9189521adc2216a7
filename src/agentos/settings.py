"""Workspace settings in `agentos.toml`, validated strictly. Flags override them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentos.errors import ConfigError

KNOWN_KEYS: dict[str, type | tuple[type, ...]] = {
    "provider": str,
    "drafter": str,
    "reviewer": str,
    "max_iterations": int,
    "parallel": int,
    "per_key_concurrency": int,
    "tracker": str,
    "github_api_url": str,
    "label": str,
}


@dataclass(frozen=True)
class Settings:
    provider: str | None = None
    drafter: str | None = None
    reviewer: str | None = None
    max_iterations: int | None = None
    parallel: int | None = None
    per_key_concurrency: int | None = None
    tracker: str | None = None
    github_api_url: str | None = None
    label: str | None = None


def load_settings(path: Path) -> Settings:
    """Read `agentos.toml` if present. Unknown keys and bad values are ConfigErrors (exit 2)."""
    if not path.exists():
        return Settings()
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from None
    section = data.pop("agentos", None)
    if isinstance(section, dict):
        data.update(section)
    for key, value in data.items():
        expected = KNOWN_KEYS.get(key)
        if expected is None:
            raise ConfigError(
                f"{path}: unknown setting {key!r}; known settings: {', '.join(sorted(KNOWN_KEYS))}"
            )
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ConfigError(
                f"{path}: setting {key!r} must be a {getattr(expected, '__name__', expected)}, got {value!r}"
            )
    for key in ("max_iterations", "parallel", "per_key_concurrency"):
        if key in data and data[key] < 1:
            raise ConfigError(f"{path}: setting {key!r} must be at least 1, got {data[key]}")
    return Settings(**data)

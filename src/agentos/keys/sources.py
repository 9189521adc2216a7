"""Where API keys come from: `<provider>-credentials.json` in AGENTOS_HOME, or the env.

Only the coordinator reads these. A malformed file is a `ConfigError` (exit 2) that names
the file and the entry, raised before anything starts. The file must be a regular file
(not a symlink, directory or FIFO) in UTF-8; like ssh, agentos warns when other users can
read it.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agentos.core import environment
from agentos.core.errors import ConfigError
from agentos.core.paths import credentials_file, sanitize_identifier
from agentos.core.redaction import register_secret
from agentos.core.settings import MAX_RPM
from agentos.core.workspace_files import read_home_file

MAX_CREDENTIALS_BYTES = 1_048_576
_warned: set[tuple[str, int]] = set()

ENV_VARS = {
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
}
MOCK_DEFAULT_KEYS = 4


@dataclass(frozen=True)
class Credential:
    """An API key and its name. `secret` is kept out of repr so it never lands in a log."""

    name: str
    secret: str = field(repr=False)
    provider: str = ""
    rpm: int | None = None  # requests per minute the key allows, when the provider does not say
    origin: str = ""  # where it came from: "$OPENAI_API_KEY" or the credentials file's path

    def source(self) -> str:
        """`$OPENAI_API_KEY` or `credentials file <path>`: where to fix this key."""
        if not self.origin:
            return "built in"
        return self.origin if self.origin.startswith("$") else f"credentials file {self.origin}"


def permission_warning(path: Path, mode: int) -> str | None:
    """The ssh-style warning for a credentials file other users can access, else None."""
    if not mode & 0o077:
        return None
    return (
        f"[COORDINATOR] Warning: credentials file {path} is accessible by other users "
        f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
    )


def _warn_once(line: str, path: Path, mode: int) -> None:
    """Once per file and mode per process: the pool re-reads the file every second."""
    if (str(path), mode) not in _warned:
        _warned.add((str(path), mode))
        print(line, flush=True)


def parse_credentials_file(
    path: Path, provider: str, warn: Callable[[str, Path, int], None] = _warn_once
) -> list[Credential]:
    """Enabled entries of a credentials file, validated strictly."""
    try:
        # Not a symlink, directory or FIFO (it would block); bounded; UTF-8 or a named error.
        text = read_home_file(
            path,
            what="credentials file",
            max_bytes=MAX_CREDENTIALS_BYTES,
            limit_hint="a credentials file is small",
        )
        mode = os.stat(path, follow_symlinks=False).st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc.strerror}") from None
    line = permission_warning(path, mode)
    if line is not None:
        warn(line, path, mode)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"credentials file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}): "
            f'{exc.msg}. Expected {{"credentials": [{{"name": ..., "type": "api_key", '
            f'"key": ..., "enabled": true}}]}}'
        ) from None
    entries = data.get("credentials") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f'credentials file {path}: top level must be {{"credentials": [...]}}')
    seen: set[str] = set()
    result: list[Credential] = []
    for index, entry in enumerate(entries):
        where = f"credentials file {path}, entry #{index + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be an object")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f'{where}: missing or empty "name"')
        where = f"credentials file {path}, entry {name!r}"
        try:
            sanitize_identifier(name)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if name in seen:
            raise ConfigError(f"{where}: duplicate name")
        seen.add(name)
        if entry.get("type", "api_key") != "api_key":
            raise ConfigError(f'{where}: unsupported type {entry.get("type")!r} (use "api_key")')
        key = entry.get("key")
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f'{where}: missing or empty "key"')
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f'{where}: "enabled" must be true or false')
        rpm = entry.get("rpm")
        if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int) or not 1 <= rpm <= MAX_RPM):
            raise ConfigError(f'{where}: "rpm" must be a whole number from 1 to {MAX_RPM}')
        unknown = set(entry) - {"name", "type", "key", "enabled", "rpm"}
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if enabled:
            result.append(
                Credential(name=name, secret=key.strip(), provider=provider, rpm=rpm, origin=str(path))
            )
    return result


def credential_limit() -> int | None:
    raw = environment.CREDENTIAL_LIMIT.get_stripped()
    if not raw:
        return None
    try:
        limit = int(raw)
    except ValueError:
        raise ConfigError(f"AGENTOS_CREDENTIAL_LIMIT must be a whole number, got {raw!r}") from None
    if limit < 1:
        raise ConfigError("AGENTOS_CREDENTIAL_LIMIT must be at least 1")
    return limit


def no_key_message(provider: str) -> str:
    """What to do when `provider` has no key: name the variables and the file it reads."""
    variables = " or ".join(ENV_VARS.get(provider, ()))
    where = f"set {variables}, or add" if variables else "add"
    return f"no API key for {provider}: {where} enabled entries to {credentials_file(provider)}"


def load_credentials(provider: str) -> list[Credential]:
    """The pool for `provider`: its credentials file, else its env var, else (mock) fake keys."""
    path = credentials_file(provider)
    if os.path.lexists(path):  # a dangling symlink is refused by name, not silently ignored
        creds = parse_credentials_file(path, provider)
    else:
        creds = []
        for var in ENV_VARS.get(provider, ()):
            value = os.environ.get(var, "").strip()
            if value:
                name = var.lower().replace("_", "-")
                creds = [Credential(name=name, secret=value, provider=provider, origin=f"${var}")]
                break
        if provider == "mock":
            creds = [
                Credential(f"mock-key-{i}", f"mock-fake-secret-{i}", "mock")
                for i in range(1, MOCK_DEFAULT_KEYS + 1)
            ]
    for cred in creds:  # whoever loads a key can redact it from everything it writes
        register_secret(cred.secret, cred.name)
    limit = credential_limit()
    return creds[:limit] if limit else creds


# -- carrying a reserved key into a worker process (its environment, never argv) --


def credential_env(credentials: dict[str, Credential]) -> dict[str, str]:
    """The environment entries that carry reserved keys to a worker (never argv)."""
    env: dict[str, str] = {}
    for provider, cred in credentials.items():
        env[environment.key_env(provider)] = cred.secret
        env[environment.key_name_env(provider)] = cred.name
    return env


def credentials_from_env(providers: set[str]) -> dict[str, Credential]:
    found: dict[str, Credential] = {}
    for provider in providers:
        secret = os.environ.get(environment.key_env(provider))
        name = os.environ.get(environment.key_name_env(provider)) or f"{provider}-key"
        if secret:
            register_secret(secret, name)
            found[provider] = Credential(name, secret, provider)
    return found

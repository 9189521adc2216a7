"""Credentials files and env keys: enabled entries only, malformed files named, the limit."""

import json
from pathlib import Path

import pytest

from agentos.core.errors import ConfigError
from agentos.keys.sources import load_credentials, parse_credentials_file


def write(home: Path, provider: str, data: object) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / f"{provider}-credentials.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_enabled_entries_only(home: Path) -> None:
    write(
        home,
        "gemini",
        {
            "credentials": [
                {"name": "a", "type": "api_key", "key": "secret-a-123", "enabled": True},
                {"name": "b", "type": "api_key", "key": "secret-b-123", "enabled": False},
                {"name": "c", "key": "secret-c-123"},
            ]
        },
    )
    creds = load_credentials("gemini")
    assert [c.name for c in creds] == ["a", "c"]
    assert all(c.provider == "gemini" for c in creds)
    assert "secret" not in repr(creds[0])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"keys": []}, "top level"),
        ({"credentials": [{"type": "api_key", "key": "x" * 10}]}, 'entry #1: missing or empty "name"'),
        ({"credentials": [{"name": "a", "key": ""}]}, "entry 'a': missing or empty \"key\""),
        ({"credentials": [{"name": "a", "key": "k" * 8}, {"name": "a", "key": "j" * 8}]}, "duplicate name"),
        ({"credentials": [{"name": "a", "key": "k" * 8, "enabled": "yes"}]}, "must be true or false"),
        ({"credentials": [{"name": "../a", "key": "k" * 8}]}, "Invalid identifier"),
    ],
)
def test_malformed_file_names_file_and_entry(home: Path, content: object, message: str) -> None:
    path = write(home, "gemini", content)
    with pytest.raises(ConfigError) as info:
        parse_credentials_file(path, "gemini")
    assert str(path) in str(info.value)
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_env_var_is_a_pool_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-123")
    creds = load_credentials("anthropic")
    assert len(creds) == 1 and creds[0].name == "anthropic-api-key"


def test_limit_uses_first_n(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOS_CREDENTIAL_LIMIT", "2")
    assert [c.name for c in load_credentials("mock")] == ["mock-key-1", "mock-key-2"]
    monkeypatch.setenv("AGENTOS_CREDENTIAL_LIMIT", "zero")
    with pytest.raises(ConfigError):
        load_credentials("mock")


def test_rpm_is_declared_per_key(home: Path) -> None:
    write(
        home,
        "gemini",
        {
            "credentials": [
                {"name": "a", "key": "secret-a-123", "rpm": 10},
                {"name": "b", "key": "secret-b-123"},
            ]
        },
    )
    assert [(c.name, c.rpm) for c in load_credentials("gemini")] == [("a", 10), ("b", None)]


@pytest.mark.parametrize("rpm", [0, -5, 1.5, "10", True, 10**7])
def test_bad_rpm_is_a_clear_error(home: Path, rpm: object) -> None:
    path = write(home, "gemini", {"credentials": [{"name": "a", "key": "secret-a-123", "rpm": rpm}]})
    with pytest.raises(ConfigError, match=r"entry 'a': \"rpm\" must be a whole number from 1 to"):
        parse_credentials_file(path, "gemini")

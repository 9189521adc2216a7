"""Each real SDK client against a loopback server speaking its wire format."""

import pytest

from agentos.llm.anthropic_api import AnthropicProvider
from agentos.llm.base import CompletionRequest, parse_retry_after
from agentos.llm.errors import AuthError, QuotaExhausted, RateLimited
from agentos.llm.gemini_api import GeminiProvider
from agentos.llm.mock import MockProvider
from agentos.llm.openai_api import OpenAIProvider
from tests.helpers.fake_llm_servers import FakeLLMServer

REQ = CompletionRequest(prompt="Write a design", system="be brief")
pytestmark = pytest.mark.timeout(60)


def make(kind: str, url: str, secret: str):  # type: ignore[no-untyped-def]
    if kind == "gemini":
        return GeminiProvider("gemini-test", secret=secret, key_name="k", base_url=url)
    if kind == "anthropic":
        return AnthropicProvider("claude-test", secret=secret, key_name="k", base_url=url)
    return OpenAIProvider("gpt-test", secret=secret, key_name="k", base_url=url + "/v1")


@pytest.mark.parametrize("kind", ["gemini", "anthropic", "openai"])
def test_success(kind: str) -> None:
    with FakeLLMServer(kind) as server:
        result = make(kind, server.url, "good-key-123").complete(REQ)
    assert "loopback server" in result.text
    assert result.provider == kind
    assert server.calls["good-key-123"] == 1


@pytest.mark.parametrize("kind", ["gemini", "anthropic", "openai"])
def test_429_is_rate_limited_with_the_server_hint_and_no_sdk_retry(kind: str) -> None:
    with FakeLLMServer(kind, retry_after=7) as server, pytest.raises(RateLimited) as info:
        make(kind, server.url, "ratelimit-key-1").complete(REQ)
    assert info.value.retry_after == 7
    assert info.value.key_name == "k"
    assert server.calls["ratelimit-key-1"] == 1, "SDK retries must be off"


@pytest.mark.parametrize("kind", ["gemini", "anthropic", "openai"])
def test_401_is_auth_error(kind: str) -> None:
    with FakeLLMServer(kind) as server, pytest.raises(AuthError):
        make(kind, server.url, "invalid-key-1").complete(REQ)


def test_gemini_daily_quota_is_quota_exhausted() -> None:
    with FakeLLMServer("gemini") as server, pytest.raises(QuotaExhausted) as info:
        make("gemini", server.url, "daily-key-1").complete(REQ)
    assert info.value.reset_at is not None


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"Retry-After": "12"}) == 12
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470) == 10
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_mock_is_deterministic_and_input_dependent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOS_MOCK_LATENCY", "0")
    mock = MockProvider()
    a = CompletionRequest("p", context={"title": "Alpha", "body": "Do alpha things.", "template": "## One\n"})
    b = CompletionRequest("p", context={"title": "Beta", "body": "Do beta things.", "template": "## One\n"})
    assert mock.complete(a).text == mock.complete(a).text
    assert "Alpha" in mock.complete(a).text and mock.complete(a).text != mock.complete(b).text
    assert "OFFLINE MOCK" in mock.complete(a).text


def test_mock_simulated_429_once_per_key(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AGENTOS_SIMULATE_429", "true")
    monkeypatch.setenv("AGENTOS_MOCK_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("AGENTOS_MOCK_LATENCY", "0")
    mock = MockProvider(key_name="mock-key-1")
    with pytest.raises(RateLimited) as info:
        mock.complete(REQ)
    assert info.value.retry_after == 2
    assert mock.complete(REQ).text

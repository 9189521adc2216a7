"""Every `AGENTOS_*` environment variable, named and read in one place.

Each variable is a `Var` with its name and what it is for; modules read them through
this module, never through `os.environ` directly, so `docs/wiki/environment.md` (generated
from `VARIABLES`) is the complete list. Values are read on every call: tests and worker
processes change the environment at run time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Var:
    name: str
    purpose: str
    audience: str = (
        "user"  # "user": set it yourself; "test": tests and benchmarks; "internal": set by agentos
    )

    def get(self, env: Mapping[str, str] | None = None) -> str | None:
        """The value, or None when unset or empty."""
        value = (os.environ if env is None else env).get(self.name, "")
        return value or None

    def get_stripped(self, env: Mapping[str, str] | None = None) -> str:
        return (self.get(env) or "").strip()


HOME = Var(
    "AGENTOS_HOME", "Where agentos keeps its state: checkpoints, logs, credentials. Default ~/.agentos."
)
WORKFLOW_DB = Var(
    "AGENTOS_WORKFLOW_DB",
    "The checkpoint DB of a single-item run (one item only). agentos also sets it for each worker.",
)
CREDENTIAL_LIMIT = Var("AGENTOS_CREDENTIAL_LIMIT", "Use only the first N keys of each credentials file.")
GEMINI_BASE_URL = Var("AGENTOS_GEMINI_BASE_URL", "Send Gemini calls to this URL (a proxy or a test server).")
ANTHROPIC_BASE_URL = Var("AGENTOS_ANTHROPIC_BASE_URL", "Send Anthropic calls to this URL.")
OPENAI_BASE_URL = Var(
    "AGENTOS_OPENAI_BASE_URL",
    "Send OpenAI calls to this URL: any OpenAI-compatible server (vLLM, llama.cpp).",
)
START_METHOD = Var(
    "AGENTOS_START_METHOD",
    "`spawn` instead of the default `forkserver`, for comparison in benchmarks.",
    "test",
)
MOCK_LATENCY = Var("AGENTOS_MOCK_LATENCY", "Seconds each OFFLINE MOCK call takes (demo and tests).", "test")
SIMULATE_429 = Var(
    "AGENTOS_SIMULATE_429",
    "`1`, `true` or `yes`: each OFFLINE MOCK key answers one simulated HTTP 429 on its first call,"
    " and the pool cools the first key it hands out.",
    "test",
)
SIMULATE_429_RETRY = Var(
    "AGENTOS_SIMULATE_429_RETRY", "The retry hint of that simulated 429, in seconds.", "test"
)
STARTUP_TIMEOUT = Var(
    "AGENTOS_STARTUP_TIMEOUT",
    "Seconds the fork server may take to preload the stack, and to start one worker. Default 120.",
)
RETRY_BASE_S = Var(
    "AGENTOS_RETRY_BASE_S",
    "Seconds before the first retry of a transient provider failure (5xx, refused connection,"
    " timeout); doubled each try, with jitter. Default 1.",
    "test",
)
MOCK_STATE_DIR = Var("AGENTOS_MOCK_STATE_DIR", "Where the OFFLINE MOCK keeps per-run state.", "internal")
RUN_DIR = Var("AGENTOS_RUN_DIR", "The run folder of the batch a worker belongs to.", "internal")
COORDINATOR_PID = Var(
    "AGENTOS_COORDINATOR_PID", "The coordinator a worker exits with when it dies.", "internal"
)
WORKER_EXIT_AFTER_STOP_S = Var(
    "AGENTOS_WORKER_EXIT_AFTER_STOP_S",
    "How long a stopped worker may take to checkpoint and exit.",
    "internal",
)
RATE_STRATEGY = Var(
    "AGENTOS_RATE_STRATEGY",
    "`reactive`: the old strategy (use a key until a 429) instead of pacing calls; for comparison.",
    "test",
)
PERMIT_ADDRESS = Var(
    "AGENTOS_PERMIT_ADDRESS", "The coordinator's permit socket a worker asks before each call.", "internal"
)
PERMIT_AUTHKEY = Var(
    "AGENTOS_PERMIT_AUTHKEY", "The per-run key that authenticates a worker to that socket.", "internal"
)
BACKEND_URL = Var(
    "AGENTOS_BACKEND_URL",
    "A team's Postgres (postgresql://user@host/db): every machine's runs share its key ledger. "
    "The password comes from PGPASSWORD or ~/.pgpass, never the command line. Unset: this machine only.",
)
NO_PANEL = Var(
    "AGENTOS_NO_PANEL",
    "Any value: batch runs on a terminal keep the plain console (no live panel), like `--no-panel`. "
    "The panel is also off in pipes, when CI is set, and when TERM is unset or `dumb`.",
)
KEY_PREFIX = "AGENTOS_KEY_"
# Named per provider (see `key_env`, `key_name_env`): set by agentos for its workers, never in argv.
PER_PROVIDER: tuple[tuple[str, str], ...] = (
    (f"{KEY_PREFIX}<PROVIDER>", "The API key a worker holds for PROVIDER (e.g. `AGENTOS_KEY_OPENAI`)."),
    (f"{KEY_PREFIX}NAME_<PROVIDER>", "That key's name, the only way logs and audit files refer to it."),
)

VARIABLES: tuple[Var, ...] = (
    HOME,
    WORKFLOW_DB,
    CREDENTIAL_LIMIT,
    GEMINI_BASE_URL,
    ANTHROPIC_BASE_URL,
    OPENAI_BASE_URL,
    START_METHOD,
    MOCK_LATENCY,
    SIMULATE_429,
    SIMULATE_429_RETRY,
    RETRY_BASE_S,
    STARTUP_TIMEOUT,
    MOCK_STATE_DIR,
    RUN_DIR,
    COORDINATOR_PID,
    WORKER_EXIT_AFTER_STOP_S,
    RATE_STRATEGY,
    PERMIT_ADDRESS,
    PERMIT_AUTHKEY,
    BACKEND_URL,
    NO_PANEL,
)


def key_env(provider: str) -> str:
    """The variable that carries a worker's key for `provider` (never argv, never logged)."""
    return f"{KEY_PREFIX}{provider.upper()}"


def key_name_env(provider: str) -> str:
    return f"{KEY_PREFIX}NAME_{provider.upper()}"

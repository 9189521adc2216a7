"""Flags + `agentos.toml` -> one validated RunConfig. Every usage error is a ConfigError."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agentos.core.durations import parse_duration
from agentos.core.errors import ConfigError
from agentos.core.paths import Workspace, sanitize_identifier
from agentos.core.pricing import PriceTable
from agentos.core.settings import load_settings
from agentos.engine.verbosity import Verbosity
from agentos.llm.registry import SDK_MODULES, ProviderSpec
from agentos.tracker.base import TrackerConfig
from agentos.workflows.item import WorkflowKind

DEFAULT_PROVIDER = "gemini"
DEFAULT_MAX_ITERATIONS = 3
DEFAULT_ITEM_TIMEOUT = "30m"  # LLM items take minutes; a provider that never answers must not hold a slot
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class RunConfig:
    kind: WorkflowKind
    workspace: Workspace
    drafter: ProviderSpec
    reviewer: ProviderSpec
    max_iterations: int
    run_all: bool
    items: tuple[str, ...]
    parallel: int | None  # None: not a batch run (one item, in this process)
    dry_run: bool
    fresh: bool
    no_wait: bool
    per_key_concurrency: int
    tracker: TrackerConfig
    labels: tuple[str, ...]
    item_timeout: float | None = None  # seconds per item process; None: no limit
    auto_parallel: bool = False  # --parallel auto: the number is chosen when the pool is open
    verbosity: Verbosity = Verbosity.NORMAL
    fail_fast: bool = False
    force: bool = False  # redo items that are already approved
    structured_output: bool = True  # reviewers asked for the verdict schema natively
    max_cost: float | None = None  # US dollars; needs a price for every model used
    provider_timeout: float | None = None  # seconds per HTTP call to a provider; None: default
    max_output_tokens: int | None = None  # per LLM call; None: the default
    prices: PriceTable = field(default_factory=PriceTable)

    @property
    def models(self) -> list[str]:
        """`provider:model` of the drafter and the reviewer, once each."""
        return list(dict.fromkeys([str(self.drafter), str(self.reviewer)]))

    rpm: int | None = None  # agentos.toml: requests per minute per key, for providers that do not say
    backend_url: str | None = None  # agentos.toml [backend] url (AGENTOS_BACKEND_URL wins)
    no_panel: bool = False  # --no-panel: the plain console on a terminal too

    @property
    def providers(self) -> list[str]:
        return list(dict.fromkeys([self.drafter.provider, self.reviewer.provider]))

    @property
    def preload(self) -> list[str]:
        """What the fork server imports once: the SDKs, and the entry points multiprocessing
        re-imports in each worker as `__mp_main__`."""
        sdks = [module for provider in self.providers for module in SDK_MODULES[provider]]
        return [*sdks, "agentos.cli.lld", "agentos.cli.issue"]

    def banner(self) -> str:
        return f"Drafter {self.drafter.label()}; reviewer {self.reviewer.label()}"


def _pick(flag: Any, setting: Any, default: Any) -> Any:
    return flag if flag is not None else setting if setting is not None else default


def parse_tracker(github: str | None, setting: str | None, api_url: str, label: str | None) -> TrackerConfig:
    value = github or (setting if setting and setting != "local" else None)
    if value is None:
        return TrackerConfig(label=label)
    repo = value.removeprefix("github:")
    if not _REPO.match(repo) or ".." in repo:
        raise ConfigError(f"invalid GitHub repository {value!r}: use OWNER/NAME")
    if not api_url.startswith(("http://", "https://")):
        raise ConfigError(f"invalid --github-api-url {api_url!r}: must start with http:// or https://")
    return TrackerConfig(kind="github", repo=repo, api_url=api_url.rstrip("/"), label=label)


def parse_max_cost(text: str | None, prices: PriceTable, models: list[str]) -> float | None:
    """`--max-cost 5` or `$0.50`: a positive amount, and a price for every model used."""
    if text is None:
        return None
    try:
        amount = float(str(text).strip().removeprefix("$")) if len(str(text)) <= 32 else -1.0
    except ValueError:
        amount = -1.0
    if not math.isfinite(amount) or amount <= 0:
        raise ConfigError(f"--max-cost takes a positive amount in US dollars (e.g. 5 or 0.50), got {text!r}")
    missing = prices.missing(models)
    if missing:
        model = missing[0].partition(":")[2]
        raise ConfigError(
            f"--max-cost needs a price for every model the run uses; agentos.toml has none for "
            f"{', '.join(missing)}. Add, with the provider's real prices:\n"
            f'  [prices."{model}"]\n  input_per_mtok = ...   # US dollars per million tokens\n'
            "  output_per_mtok = ..."
        )
    return amount


def build_config(kind: WorkflowKind, opts: dict[str, Any], items: list[str]) -> RunConfig:
    repo = Path(opts.get("repo") or ".").expanduser()
    if not repo.is_dir():
        raise ConfigError(f"workspace {repo} is not a directory (use --repo PATH)")
    workspace = Workspace(repo.resolve())
    settings = load_settings(workspace.settings_file)
    if settings.max_item_bytes is not None:
        workspace = replace(workspace, max_item_bytes=settings.max_item_bytes)
    provider = _pick(opts.get("provider"), settings.provider, None)
    drafter = ProviderSpec.parse(_pick(opts.get("drafter"), settings.drafter, provider or DEFAULT_PROVIDER))
    reviewer = ProviderSpec.parse(
        _pick(opts.get("reviewer"), settings.reviewer, provider or DEFAULT_PROVIDER)
    )
    if opts.get("provider"):  # --provider sets both, over the settings file
        drafter = ProviderSpec.parse(opts.get("drafter") or opts["provider"])
        reviewer = ProviderSpec.parse(opts.get("reviewer") or opts["provider"])
    max_iterations = _pick(opts.get("max_iterations"), settings.max_iterations, DEFAULT_MAX_ITERATIONS)
    if max_iterations < 1:
        raise ConfigError(f"--max-iterations must be at least 1, got {max_iterations}")
    parallel = opts.get("parallel")
    auto_parallel = parallel == "auto"
    if auto_parallel:
        parallel = 1  # chosen when the key pool is open (runs.parallelism)
    if parallel is not None and parallel < 1:
        raise ConfigError(f"--parallel must be a positive number, got {parallel}")
    run_all = bool(opts.get("run_all"))
    if run_all and items:
        raise ConfigError("give either --all or specific items, not both")
    if not run_all and not items:
        raise ConfigError("nothing to do: give --all or name an item (see --help)")
    if run_all and parallel is None:
        parallel = settings.parallel or 1
    if parallel is None and len(items) > 1:
        parallel = 1
    concurrency = _pick(opts.get("per_key_concurrency"), settings.per_key_concurrency, 1)
    if concurrency < 1:
        raise ConfigError(f"--per-key-concurrency must be at least 1, got {concurrency}")
    api_url = _pick(opts.get("github_api_url"), settings.github_api_url, "https://api.github.com")
    label = _pick(opts.get("label"), settings.label, None)
    tracker = parse_tracker(opts.get("github"), settings.tracker, api_url, label)
    for item in items:
        sanitize_identifier(item)
    timeout_text = _pick(opts.get("item_timeout"), settings.item_timeout, DEFAULT_ITEM_TIMEOUT)
    try:
        item_timeout = parse_duration(timeout_text)
    except ValueError as exc:
        raise ConfigError(f"--item-timeout: {exc}") from None
    provider_timeout = None
    if settings.provider_timeout is not None:
        provider_timeout = parse_duration(settings.provider_timeout)  # checked by load_settings
    prices = PriceTable(settings.prices)
    max_cost = parse_max_cost(
        opts.get("max_cost"), prices, list(dict.fromkeys([str(drafter), str(reviewer)]))
    )
    try:
        verbosity = Verbosity.from_flags(bool(opts.get("quiet")), bool(opts.get("verbose")))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return RunConfig(
        kind=kind,
        workspace=workspace,
        drafter=drafter,
        reviewer=reviewer,
        max_iterations=max_iterations,
        run_all=run_all,
        items=tuple(items),
        parallel=parallel,
        auto_parallel=auto_parallel,
        dry_run=bool(opts.get("dry_run")),
        fresh=bool(opts.get("fresh")),
        no_wait=bool(opts.get("no_wait")),
        per_key_concurrency=concurrency,
        tracker=tracker,
        labels=tuple(label.split(",")) if label and kind is WorkflowKind.ISSUE else (),
        item_timeout=item_timeout or None,
        verbosity=verbosity,
        fail_fast=bool(opts.get("fail_fast")),
        force=bool(opts.get("force")),
        structured_output=not opts.get("no_structured_output"),
        max_cost=max_cost,
        provider_timeout=provider_timeout,
        max_output_tokens=settings.max_output_tokens,
        prices=prices,
        rpm=settings.rpm,
        backend_url=settings.backend_url,
        no_panel=bool(opts.get("no_panel")),
    )

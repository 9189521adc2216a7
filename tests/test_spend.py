"""Prices as settings, the cost column, --max-cost, and tokens in summary.json."""

import io
import json
from pathlib import Path
from typing import Any

import pytest

from agentos.cli.config import build_config
from agentos.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_LIMIT_REACHED, ConfigError
from agentos.core.outcome import ItemOutcome, ItemStatus
from agentos.core.pricing import Price, PriceTable
from agentos.core.settings import load_settings
from agentos.engine.coordinator import ParallelCoordinator
from agentos.llm.usage import Usage, UsageTotals
from agentos.runs.batch import exit_code_for
from agentos.runs.item_record import ItemRecord
from agentos.runs.spend import SpendMeter
from agentos.runs.summary import render_table
from agentos.workflows.item import ItemJob, WorkflowKind
from tests.helpers.cli import issue_flags, run_cli, run_dirs

pytestmark = pytest.mark.timeout(150)
PRICE = '[prices."mock-offline"]\ninput_per_mtok = 1000\noutput_per_mtok = 2000\n'


def _job(key: str) -> ItemJob:
    return ItemJob(WorkflowKind.LLD, key, "/w", "/db", "/a", "mock", "mock")


def _outcome(model: str, tokens_in: int, tokens_out: int, estimated: bool = False) -> ItemOutcome:
    usage = UsageTotals()
    usage.add(model, Usage(tokens_in, tokens_out, estimated))
    return ItemOutcome(ItemStatus.APPROVED, usage=usage.to_dict())


# -- settings ------------------------------------------------------------------------------
def test_prices_and_provider_timeout_are_settings(tmp_path: Path) -> None:
    (tmp_path / "agentos.toml").write_text(
        'provider_timeout = "10m"\nmax_output_tokens = 1536\n[prices."gemini-2.5-pro"]\ninput_per_mtok = 1.25\noutput_per_mtok = 10\n'
        '[prices."openai:gpt-4o"]\ninput_per_mtok = 2.5\noutput_per_mtok = 10.0\n'
    )
    settings = load_settings(tmp_path / "agentos.toml")
    assert settings.prices == {"gemini-2.5-pro": Price(1.25, 10.0), "openai:gpt-4o": Price(2.5, 10.0)}
    assert settings.provider_timeout == "10m" and settings.max_output_tokens == 1536
    config = build_config(
        WorkflowKind.LLD, {"repo": str(tmp_path), "provider": "gemini:gemini-2.5-pro"}, ["8"]
    )
    assert (
        config.provider_timeout == 600
        and config.max_output_tokens == 1536
        and config.prices.for_model("gemini:gemini-2.5-pro") == Price(1.25, 10)
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[prices."m"]\ninput_per_mtok = 1\n', "output_per_mtok is missing"),
        ('[prices."m"]\ninput_per_mtok = -1\noutput_per_mtok = 1\n', "between 0 and"),
        ('[prices."m"]\ninput_per_mtok = true\noutput_per_mtok = 1\n', "must be a number"),
        ('[prices."m"]\ninput_per_mtok = "1"\noutput_per_mtok = 1\n', "must be a number"),
        ('[prices."m"]\ninput_per_mtok = nan\noutput_per_mtok = 1\n', "between 0 and"),
        (
            '[prices."m"]\ninput_per_mtok = 1\noutput_per_mtok = 1\ncurrency = "EUR"\n',
            "unknown key(s) currency",
        ),
        ("prices = 3\n", "[prices] must be tables"),
        ("[prices]\nm = 3\n", "must be a table"),
        ('provider_timeout = "soon"\n', "'provider_timeout'"),
        ("provider_timeout = 0\n", "must be above 0"),
        ("max_output_tokens = 0\n", "at least 1"),
        ("max_output_tokens = 10000000\n", "at most 1000000"),
        ("max_output_tokens = true\n", "whole number"),
    ],
)
def test_bad_prices_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "agentos.toml").write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "agentos.toml")
    assert message in str(info.value) and info.value.exit_code == 2


def test_max_cost_without_a_price_names_the_model(demo: Path) -> None:
    opts = {"repo": str(demo), "provider": "openai:qwen-local", "max_cost": "5"}
    with pytest.raises(ConfigError) as info:
        build_config(WorkflowKind.LLD, opts, ["8"])
    assert "none for openai:qwen-local" in str(info.value) and '[prices."qwen-local"]' in str(info.value)


@pytest.mark.parametrize("amount", ["0", "-1", "abc", "nan", "inf", "1" * 40])
def test_max_cost_must_be_a_positive_amount(demo: Path, amount: str) -> None:
    (demo / "agentos.toml").write_text(PRICE)
    with pytest.raises(ConfigError, match="positive amount"):
        build_config(WorkflowKind.LLD, {"repo": str(demo), "provider": "mock", "max_cost": amount}, ["8"])


def test_max_cost_accepts_a_dollar_sign(demo: Path) -> None:
    (demo / "agentos.toml").write_text(PRICE)
    config = build_config(
        WorkflowKind.LLD, {"repo": str(demo), "provider": "mock", "max_cost": "$0.50"}, ["8"]
    )
    assert config.max_cost == 0.5


# -- the meter ----------------------------------------------------------------------------
def test_a_provider_model_price_wins_over_the_bare_model() -> None:
    table = PriceTable({"m": Price(1, 2), "openai:m": Price(3, 4)})
    assert table.for_model("openai:m") == Price(3, 4) and table.for_model("gemini:m") == Price(1, 2)
    assert table.missing(["openai:m", "x:y"]) == ["x:y"]
    assert table.cost({"openai:m": {"input_tokens": 1_000_000, "output_tokens": 500_000}}) == 5.0
    assert table.cost({"x:y": {"input_tokens": 1, "output_tokens": 1}}) is None  # never a guess


def test_the_meter_sums_every_attempt_and_stops_admissions_once_past_the_budget() -> None:
    reasons: list[str] = []
    meter = SpendMeter(
        PriceTable({"m": Price(1, 2)}), ["openai:m"], max_cost=3.0, stop_admitting=reasons.append
    )
    meter.record(_job("1"), _outcome("openai:m", 1_000_000, 0))  # $1
    meter.record(_job("1"), _outcome("openai:m", 0, 500_000))  # a retry of the same item: $1 more
    assert not meter.limit_reached and reasons == []
    assert meter.item_fields("LLD-1") == {
        "input_tokens": 1_000_000, "output_tokens": 500_000, "tokens_estimated": False, "cost": 2.0
    }  # fmt: skip
    meter.record(_job("2"), _outcome("openai:m", 1_000_000, 0))  # run: $3, the budget
    meter.record(_job("3"), _outcome("openai:m", 1_000_000, 0))
    assert meter.limit_reached and reasons == ["--max-cost $3.00 reached (spent $3.00)"]
    run = meter.run_fields()
    assert (
        run["cost"] == 4.0
        and run["max_cost_reached"]
        and run["prices"] == {"openai:m": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    )
    assert meter.total_line() == "Tokens: 3,000,000 in / 500,000 out; cost $4.00"


def test_without_prices_there_are_tokens_and_no_cost() -> None:
    meter = SpendMeter(PriceTable(), ["openai:m"])
    meter.record(_job("1"), _outcome("openai:m", 10, 20))
    assert not meter.show_cost and "cost" not in meter.item_fields("LLD-1")
    assert "cost" not in meter.run_fields() and meter.total_line() == "Tokens: 10 in / 20 out"


def test_a_model_without_a_price_makes_the_cost_unknown_not_partial() -> None:
    meter = SpendMeter(PriceTable({"a": Price(1, 1)}), ["x:a", "x:b"])
    meter.record(_job("1"), _outcome("x:a", 10, 10))
    meter.record(_job("1"), _outcome("x:b", 10, 10))
    assert meter.item_fields("LLD-1")["cost"] is None
    assert "cost unknown (no price for x:b)" in meter.total_line()


def test_estimated_tokens_are_labelled_as_estimates() -> None:
    meter = SpendMeter(PriceTable({"mock-offline": Price(1, 1)}), ["mock:mock-offline"])
    meter.record(_job("1"), _outcome("mock:mock-offline", 1000, 1000, estimated=True))
    assert meter.total_line().startswith("Tokens: ~1,000 in / ~1,000 out (~ estimated by the OFFLINE MOCK")
    assert meter.total_line().endswith("cost ~$0.0020")


def _rows(items: list[dict[str, Any]], show_cost: bool | None) -> str:
    """The table of summary.json-shaped items, read as `agentos show` reads them."""
    out = io.StringIO()
    render_table([ItemRecord.from_json(item) for item in items], out, False, show_cost)
    return out.getvalue()


def test_cost_column_only_with_prices() -> None:
    base = {"item": "LLD-1", "status": "approved", "rounds": 1, "duration_s": 1.0, "error": None, "log": None}
    item = {**base, "input_tokens": 1200, "output_tokens": 300, "tokens_estimated": False}
    without = _rows([item], False)
    assert "Tokens" in without and "1,200 in / 300 out" in without and "Cost" not in without
    priced = _rows([{**item, "cost": 0.0123}], True)
    assert "Cost" in priced and "$0.0123" in priced
    unpriced = _rows([{**item, "cost": None}], True)
    assert "no price" in unpriced and "$" not in unpriced
    assert "Tokens" not in _rows([base], False)  # a run without accounting: the old table


def test_exit_code_for_a_cost_stop() -> None:
    coordinator = ParallelCoordinator(1)
    done = ItemRecord("LLD-1", ItemStatus.APPROVED.value)
    left = ItemRecord("LLD-2", ItemStatus.NOT_STARTED.value)
    failed = ItemRecord("LLD-3", ItemStatus.FAILED.value)
    assert exit_code_for(coordinator, [done, left], limit_reached=True) == EXIT_LIMIT_REACHED
    assert exit_code_for(coordinator, [done, left, failed], True) == EXIT_FAILED
    assert exit_code_for(coordinator, [done, done], limit_reached=True) == 0  # nothing was held back
    assert exit_code_for(coordinator, [done, left]) == EXIT_INTERRUPTED


# -- through the real CLI ---------------------------------------------------------------------
def test_max_cost_stops_new_items_through_the_cli(demo: Path, home: Path) -> None:
    (demo / "agentos.toml").write_text(PRICE)
    result = run_cli(
        "lld-workflow", "--repo", str(demo), *issue_flags(3, 8, 42), "--parallel", "1",
        "--provider", "mock", "--max-cost", "1", home=home,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == EXIT_LIMIT_REACHED, out + result.stderr
    assert "[COORDINATOR] Stopping early: --max-cost $1.00 reached (spent ~$" in out
    assert "Summary: 1 approved, 0 need revision, 0 failed, 2 not started (LLD-8, LLD-42)" in out
    assert "[LLD-8] >>> Worker process" not in out
    assert "Cost" in out and "~$" in out
    (run_dir,) = run_dirs(home)
    data = json.loads((run_dir / "summary.json").read_text())
    assert data["exit_code"] == EXIT_LIMIT_REACHED and data["stopped_early"].startswith("--max-cost $1.00")
    usage = data["usage"]
    assert usage["max_cost_reached"] and usage["cost"] >= 1 and usage["tokens_estimated"]
    first = data["items"][0]
    assert first["item"] == "LLD-3" and first["input_tokens"] > 0 and first["cost"] == usage["cost"]
    assert usage["by_model"]["mock:mock-offline"]["calls"] == 2
    audit = [json.loads(line) for line in (run_dir / "workflow-audit-3.jsonl").read_text().splitlines()]
    calls = [e for e in audit if e["event"] == "llm_call"]
    assert sum(c["input_tokens"] for c in calls) == first["input_tokens"]
    assert all(c["tokens_estimated"] for c in calls)


def test_max_cost_without_prices_is_a_usage_error(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--provider", "mock", "--max-cost", "1", home=home
    )
    assert result.returncode == 2 and "none for mock:mock-offline" in result.stderr
    assert run_dirs(home) == []


def test_tokens_without_prices_and_text_verdicts_through_the_cli(demo: Path, home: Path) -> None:
    result = run_cli(
        "issue-workflow", "--repo", str(demo), "--all", "--parallel", "2", "--provider", "mock",
        "--no-structured-output", home=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert "[COORDINATOR] Tokens: ~" in result.stdout and "Cost" not in result.stdout
    (run_dir,) = run_dirs(home)
    data = json.loads((run_dir / "summary.json").read_text())
    assert "cost" not in data["usage"] and data["usage"]["input_tokens"] == sum(
        i["input_tokens"] for i in data["items"]
    )
    verdicts = [
        json.loads(line)
        for audit in run_dir.glob("workflow-audit-*.jsonl")
        for line in audit.read_text().splitlines()
        if '"verdict"' in line
    ]
    assert verdicts and {v["format"] for v in verdicts if v["event"] == "verdict"} == {"text"}


def test_a_summary_read_back_shows_its_tokens_and_costs_and_survives_junk() -> None:
    base = {"item": "LLD-1", "status": "approved", "rounds": 1, "duration_s": 1.0}
    data = {
        "items": [
            {**base, "input_tokens": 1200, "output_tokens": 300, "tokens_estimated": False, "cost": 0.5},
            {**base, "item": "LLD-2", "input_tokens": "[red]x", "output_tokens": None, "cost": None},
            {**base, "item": "LLD-3", "input_tokens": 5, "output_tokens": 5, "tokens_estimated": "yes"},
        ]
    }
    table = _rows(data["items"], None)
    assert "Cost" in table and "1,200 in / 300 out" in table and "$0.5000" in table
    assert "~" not in table  # only a real `true` marks estimates
    row2 = next(line for line in table.splitlines() if "LLD-2" in line)
    assert " ? " in row2 and "$" not in row2

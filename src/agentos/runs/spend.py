"""What a run spent: tokens per item and per run, their cost where prices are set, --max-cost.

Each worker reports the tokens of its own calls in its outcome (every attempt of an item,
a credential retry too); this meter sums them on the coordinator's side. Once the run's
cost reaches `--max-cost`, it asks the coordinator to start no new item; running items
finish. The spend of a running item is known when its attempt ends, so a run may pass
the budget by what the items already running spend.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from agentos.core.outcome import ItemOutcome
from agentos.core.pricing import PriceTable
from agentos.llm.usage import UsageTotals
from agentos.runs.item_record import ItemUsage
from agentos.workflows.item import ItemJob


def format_cost(cost: float) -> str:
    return f"${cost:.4f}" if cost < 1 else f"${cost:,.2f}"


def format_tokens(input_tokens: int, output_tokens: int, estimated: bool) -> str:
    mark = "~" if estimated else ""
    return f"{mark}{input_tokens:,} in / {mark}{output_tokens:,} out"


class SpendMeter:
    def __init__(
        self,
        prices: PriceTable,
        models: Iterable[str],
        max_cost: float | None = None,
        stop_admitting: Callable[[str], None] | None = None,
    ) -> None:
        self.prices = prices
        self.models = list(dict.fromkeys(models))  # `provider:model` of the drafter and reviewer
        self.max_cost = max_cost
        self.stop_admitting = stop_admitting
        self.limit_reached = False
        self._items: dict[str, UsageTotals] = {}
        self._run = UsageTotals()
        self._lock = threading.Lock()

    @property
    def show_cost(self) -> bool:
        """A cost column only when a price is set for a model this run uses."""
        return self.prices.priced_any(self.models)

    def record(self, job: ItemJob, outcome: ItemOutcome) -> None:
        """One attempt's tokens (WorkerLauncher's `on_outcome`; a supervisor thread)."""
        with self._lock:
            self._items.setdefault(job.item_id, UsageTotals()).merge(outcome.usage)
            self._run.merge(outcome.usage)
            cost = self.prices.cost(self._run.by_model)
            mark = "~" if self._run.estimated else ""
            over = self.max_cost is not None and cost is not None and cost >= self.max_cost
            first = over and not self.limit_reached
            self.limit_reached = self.limit_reached or over
        if first and self.stop_admitting is not None and cost is not None and self.max_cost is not None:
            self.stop_admitting(
                f"--max-cost {format_cost(self.max_cost)} reached (spent {mark}{format_cost(cost)})"
            )

    def item_usage(self, item_id: str) -> ItemUsage:
        """What one item spent, for its summary record."""
        with self._lock:
            usage = self._items.get(item_id) or UsageTotals()
        cost = self.prices.cost(usage.by_model) if self.show_cost else None
        return ItemUsage(
            usage.input_tokens,
            usage.output_tokens,
            usage.estimated,
            priced=self.show_cost,
            cost=round(cost, 6) if cost is not None else None,
        )

    def item_fields(self, item_id: str) -> dict[str, object]:
        """Per-item fields of summary.json."""
        return self.item_usage(item_id).to_json()

    def run_fields(self) -> dict[str, Any]:
        with self._lock:
            fields = self._fields(self._run)
            fields["by_model"] = self._run.to_dict()
        priced = {m: vars(p) for m in self.models if (p := self.prices.for_model(m)) is not None}
        fields["prices"] = priced  # what the cost was computed with: the user's own settings
        if self.max_cost is not None:
            fields["max_cost"] = self.max_cost
            fields["max_cost_reached"] = self.limit_reached
        return fields

    def _fields(self, usage: UsageTotals) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "tokens_estimated": usage.estimated,
        }
        if self.show_cost:
            cost = self.prices.cost(usage.by_model)
            fields["cost"] = round(cost, 6) if cost is not None else None
        return fields

    def total_line(self) -> str:
        """`Tokens: 1,234 in / 567 out; cost $0.0012` for the console."""
        run = self.run_fields()
        line = "Tokens: " + format_tokens(run["input_tokens"], run["output_tokens"], run["tokens_estimated"])
        if run["tokens_estimated"]:
            line += " (~ estimated by the OFFLINE MOCK, not measured)"
        if "cost" in run:
            missing = self.prices.missing(run["by_model"])
            if run["cost"] is None:
                line += f"; cost unknown (no price for {', '.join(missing)})"
            else:
                line += f"; cost {'~' if run['tokens_estimated'] else ''}{format_cost(run['cost'])}"
        return line

"""Prices are settings, never constants: `[prices."MODEL"]` in agentos.toml.

    [prices."gemini-2.5-pro"]
    input_per_mtok = 1.25    # US dollars per million input tokens
    output_per_mtok = 10

A key is a model name (`gemini-2.5-pro`) or a provider and model (`openai:gpt-4o-mini`);
the second wins. A model without a price has no cost: agentos shows its tokens only and
never guesses a price.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agentos.core.errors import ConfigError

PRICE_FIELDS = ("input_per_mtok", "output_per_mtok")
MAX_PRICE_PER_MTOK = 100_000.0  # a larger price is a typo
MAX_PRICED_MODELS = 200


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


def parse_prices(raw: Any, where: str) -> dict[str, Price]:
    """The `[prices]` table of a settings file, checked strictly (ConfigError, exit 2)."""
    if not isinstance(raw, dict):
        raise ConfigError(f'{where}: [prices] must be tables such as [prices."MODEL"], got {raw!r}')
    if len(raw) > MAX_PRICED_MODELS:
        raise ConfigError(f"{where}: more than {MAX_PRICED_MODELS} priced models")
    prices: dict[str, Price] = {}
    for model, table in raw.items():
        label = f'{where}: [prices."{model}"]'
        if not isinstance(table, dict):
            raise ConfigError(f"{label} must be a table with {' and '.join(PRICE_FIELDS)}")
        unknown = sorted(set(table) - set(PRICE_FIELDS))
        if unknown:
            raise ConfigError(
                f"{label}: unknown key(s) {', '.join(unknown)}; known: {', '.join(PRICE_FIELDS)}"
            )
        values = []
        for name in PRICE_FIELDS:
            value = table.get(name)
            if value is None:
                raise ConfigError(f"{label}: {name} is missing (US dollars per million tokens)")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{label}: {name} must be a number, got {value!r}")
            if not math.isfinite(value) or not 0 <= value <= MAX_PRICE_PER_MTOK:
                raise ConfigError(
                    f"{label}: {name} must be between 0 and {MAX_PRICE_PER_MTOK:g}, got {value!r}"
                )
            values.append(float(value))
        prices[str(model)] = Price(*values)
    return prices


class PriceTable:
    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.prices = dict(prices or {})

    def for_model(self, model: str) -> Price | None:
        """`model` is `provider:model`; a price for that exact pair wins over the bare model's."""
        if model in self.prices:
            return self.prices[model]
        return self.prices.get(model.partition(":")[2])

    def missing(self, models: Iterable[str]) -> list[str]:
        return [m for m in dict.fromkeys(models) if self.for_model(m) is None]

    def priced_any(self, models: Iterable[str]) -> bool:
        return any(self.for_model(m) is not None for m in models)

    def cost(self, by_model: Mapping[str, Mapping[str, Any]]) -> float | None:
        """The cost of these tokens (UsageTotals.to_dict()); None if a model used has no price."""
        total = 0.0
        for model, entry in by_model.items():
            price = self.for_model(model)
            if price is None:
                return None
            total += price.cost(int(entry.get("input_tokens", 0)), int(entry.get("output_tokens", 0)))
        return total

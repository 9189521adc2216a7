"""What the dashboard shows of runs, and the one protocol every source of run records meets.

The pages and the timeline read runs only through `RunRecords`: today the local run folders
(`local_records.LocalRunRecords`); once the team backend keeps run records (issue 23), a
backend source implements the same four methods and the pages need no change (ADR 0014).

Every value in these types is already checked and cleaned (`clean_text`: no control or bidi
characters, bounded), but it is still untrusted text: the templates escape all of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agentos.core.errors import ConfigError


class RecordNotFound(ConfigError):
    """No such run or item in this source: `what` names it (already cleaned). Exit 2 in the CLI."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"not found: {what}")


@dataclass(frozen=True)
class Spend:
    """Tokens and cost of a run or an item; None: not known (an old summary, no usage yet)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    estimated: bool = False  # the offline mock's counts are estimates

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None or self.output_tokens is None:
            return None
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class RunRow:
    """One run in the runs list."""

    name: str  # the run folder's name: the run's id in URLs
    state: str  # a `RunState` value: finished, running, stopped, unreadable
    started: str
    workspace: str
    workflow: str
    host: str
    duration_s: float | None
    totals: Mapping[str, int] = field(default_factory=dict)
    spend: Spend = Spend()
    exit_code: int | None = None
    problem: str | None = None  # why its records could not be (fully) read


@dataclass(frozen=True)
class ItemRow:
    """One item of a run: from its summary when the run has ended, else from its audit."""

    item: str
    status: str
    title: str = ""
    rounds: int = 0
    started: float | None = None  # wall-clock seconds; None: it never started
    ended: float | None = None  # None: still running (or killed)
    duration_s: float | None = None
    spend: Spend = Spend()
    error: str | None = None


@dataclass(frozen=True)
class AuditEvent:
    """One line of an item's audit (`core.events`): its time, its name, and its other fields
    as JSON scalars or short lists, as written (each text cleaned)."""

    epoch: float | None
    event: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def number(self, key: str) -> float | None:
        value = self.fields.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if value == value and abs(value) < 1e12 else None

    def text(self, key: str) -> str | None:
        value = self.fields.get(key)
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class KeyRow:
    """A key of the key ledger now: its state and its last hour (never its secret)."""

    name: str
    provider: str
    state: str
    cooling_until: float | None
    calls_last_hour: int
    refused_last_hour: int


@dataclass(frozen=True)
class PoolCall:
    """A call any run made on a key during this run, from the key ledger (paced runs only)."""

    key: str
    start: float
    end: float
    outcome: str  # ok, rate_limited, error, rejected; "in flight"
    run: str  # which run made it: `pid 4242 (lld-workflow)`


@dataclass(frozen=True)
class RunDetail:
    run: RunRow
    items: Sequence[ItemRow]
    events: Mapping[str, Sequence[AuditEvent]]  # per item id, in file order
    keys: Sequence[KeyRow] = ()
    keys_problem: str | None = None  # why the key ledger could not be read
    now: float = 0.0  # when this was read: the end of the axis while the run is going
    started: float | None = None  # the run's start and end, wall-clock seconds
    ended: float | None = None
    notes: Sequence[str] = ()  # what of the run's records was not read, and why
    pool_calls: Sequence[PoolCall] = ()  # every run's calls on these keys meanwhile (the ledger)


@dataclass(frozen=True)
class Round:
    """One review round from the lineage: the draft and the reviewer's verdict, as written."""

    number: int
    draft: str | None
    verdict: str | None


@dataclass(frozen=True)
class ItemDetail:
    run: RunRow
    item: ItemRow
    log_lines: Sequence[str] = ()
    log_problem: str | None = None
    log_truncated: bool = False  # a huge log: only its end is shown
    events: Sequence[AuditEvent] = ()
    events_problem: str | None = None
    rounds: Sequence[Round] = ()
    lineage_problem: str | None = None
    item_text: str | None = None  # the issue or brief the item started from (lineage 001)


class RunRecords(Protocol):
    """A source of run records: local run folders now, the team backend later."""

    def runs(self, limit: int = 200) -> list[RunRow]:
        """The newest `limit` runs, newest first."""
        ...

    def run(self, name: str) -> RunDetail:
        """One run with its items, their audit events and the key pool. RecordNotFound."""
        ...

    def item(self, run: str, item: str) -> ItemDetail:
        """One item: its log, its audit events and its rounds. RecordNotFound."""
        ...

    def stamp(self, run: str | None = None) -> str:
        """A value that changes whenever what `runs()` (or `run(run)`) shows may have changed:
        the live pages reload their content when it does. Cheap: called twice a second."""
        ...

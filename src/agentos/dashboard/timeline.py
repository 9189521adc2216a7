"""A run's timeline: one lane per item on one time axis, and its keys' calls over time.

Built from what the records hold and nothing else, so the live page, the exported file and
a backend's records draw the same thing:
- a lane spans the item's start to its end (its joblog times; while it runs, to now);
- a node spans its `node_start` to its `node_end` audit events; a round, its first node
  to its `verdict` event;
- a permit wait is a `permit_wait` event (paced runs: the call waited `waited_s` for budget
  until `granted_epoch`);
- a key pause spans a `workflow_rate_limited` event (the worker gave its key back after a
  429 or a spent quota) to the item's next `workflow_resume` or `workflow_start`;
- a retry wait is an `llm_call` that failed transiently and set `retry_in_s`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from agentos.dashboard.records import AuditEvent, ItemRow, RunDetail


class SegmentKind(StrEnum):
    NODE = "node"
    PERMIT = "permit"  # waiting for a permit (budget on a key)
    PAUSE = "pause"  # paused for a key: the item went back to the queue
    RETRY = "retry"  # waiting to try a failed call again


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    start: float
    end: float
    label: str


@dataclass(frozen=True)
class RoundSpan:
    number: int
    start: float
    end: float
    verdict: str


@dataclass
class Lane:
    item: str
    status: str
    start: float
    end: float
    running: bool
    segments: list[Segment] = field(default_factory=list)
    rounds: list[RoundSpan] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class KeyMark:
    """A call on a key (`ok`, or its error's name) or a cool-down span, on the run's axis."""

    start: float
    end: float
    outcome: str
    item: str


@dataclass
class KeyTrack:
    key: str
    calls: list[KeyMark] = field(default_factory=list)
    refusals: list[KeyMark] = field(default_factory=list)  # 429s and quota errors
    cooldowns: list[KeyMark] = field(default_factory=list)
    ledger: list[KeyMark] = field(default_factory=list)  # every run's calls, from the key ledger

    @property
    def ok_calls(self) -> int:
        return sum(1 for c in self.calls if c.outcome == "ok")


@dataclass
class Timeline:
    start: float
    end: float
    lanes: list[Lane]
    keys: list[KeyTrack]

    @property
    def span(self) -> float:
        return max(self.end - self.start, 1e-3)


REFUSED = {"RateLimited", "QuotaExhausted"}


def _lane(row: ItemRow, events: Sequence[AuditEvent], now: float) -> Lane | None:
    timed = [e for e in events if e.epoch is not None]
    start = row.started if row.started is not None else (timed[0].epoch if timed else None)
    if start is None:
        return None  # never started: no lane
    running = row.ended is None and row.status == "running"
    end = row.ended if row.ended is not None else (now if running else (timed[-1].epoch if timed else start))
    assert end is not None
    end = max(end, start)
    lane = Lane(row.item, row.status, start, end, running)
    open_nodes: dict[str, float] = {}
    round_start: dict[int, float] = {}
    paused_at: tuple[float, str] | None = None
    for event in timed:
        at = event.epoch
        assert at is not None
        name = event.event
        if name == "node_start":
            node = event.text("node") or "?"
            open_nodes[node] = at
            number = event.number("round")
            if number is not None:
                round_start.setdefault(int(number), at)
        elif name == "node_end":
            node = event.text("node") or "?"
            begun = open_nodes.pop(node, None)
            if begun is None:
                duration = event.number("duration_s")
                begun = at - duration if duration is not None and duration >= 0 else at
            lane.segments.append(Segment(SegmentKind.NODE, max(begun, start), at, node))
        elif name == "verdict":
            number = int(event.number("round") or len(lane.rounds) + 1)
            begun = round_start.get(number, at)
            lane.rounds.append(RoundSpan(number, begun, at, event.text("verdict") or "?"))
        elif name == "permit_wait":
            waited = event.number("waited_s") or 0.0
            granted = event.number("granted_epoch") or at  # audited after the call; granted before it
            key = event.text("key_name") or "?"
            lane.segments.append(
                Segment(
                    SegmentKind.PERMIT,
                    max(granted - waited, start),
                    granted,
                    f"waiting for a permit on {key}",
                )
            )
        elif name == "workflow_rate_limited":
            paused_at = (at, event.text("key_name") or "?")
            for node, begun in open_nodes.items():  # the node was cut by the 429
                lane.segments.append(Segment(SegmentKind.NODE, begun, at, node))
            open_nodes.clear()
        elif name in ("workflow_resume", "workflow_start") and paused_at is not None:
            lane.segments.append(
                Segment(SegmentKind.PAUSE, paused_at[0], at, f"paused for key {paused_at[1]}")
            )
            paused_at = None
        elif name == "llm_call":
            retry = event.number("retry_in_s")
            if retry is not None and retry > 0:
                why = event.text("outcome") or "error"
                lane.segments.append(
                    Segment(SegmentKind.RETRY, at, min(at + retry, end), f"retry after {why}")
                )
    if paused_at is not None:
        lane.segments.append(Segment(SegmentKind.PAUSE, paused_at[0], end, f"paused for key {paused_at[1]}"))
    for node, begun in open_nodes.items():  # still working on it (or killed in it)
        lane.segments.append(Segment(SegmentKind.NODE, begun, end, node))
    lane.segments = [s for s in lane.segments if s.end >= s.start]
    return lane


def _keys(detail: RunDetail) -> list[KeyTrack]:
    tracks: dict[str, KeyTrack] = {}
    for item, events in detail.events.items():
        granted: float | None = None  # a paced call's grant: its audited duration counts the wait
        for event in events:
            if event.epoch is None:
                continue
            key = event.text("key_name")
            if key is None:
                continue
            track = tracks.setdefault(key, KeyTrack(key))
            if event.event == "permit_wait":
                granted = event.number("granted_epoch")
            elif event.event == "llm_call":
                duration = max(0.0, event.number("duration_s") or 0.0)
                outcome = event.text("outcome") or "?"
                start = event.epoch - duration
                if granted is not None and start <= granted <= event.epoch:
                    start = granted  # on the key from its grant, not while it waited for one
                granted = None
                mark = KeyMark(start, event.epoch, outcome, item)
                track.calls.append(mark)
                if outcome in REFUSED:
                    track.refusals.append(mark)
                retry = event.number("retry_in_s")
                if outcome in REFUSED and retry:
                    track.cooldowns.append(KeyMark(event.epoch, event.epoch + retry, outcome, item))
            elif event.event == "workflow_rate_limited":
                wait = event.number("retry_after")
                if wait is not None and wait > 0:
                    track.cooldowns.append(KeyMark(event.epoch, event.epoch + wait, "cool-down", item))
    for call in detail.pool_calls:
        tracks.setdefault(call.key, KeyTrack(call.key)).ledger.append(
            KeyMark(call.start, call.end, call.outcome, call.run)
        )
    return [tracks[k] for k in sorted(tracks)]


def build(detail: RunDetail) -> Timeline:
    """The timeline of a run as its records hold it now."""
    now = detail.now
    lanes = [
        lane for row in detail.items if (lane := _lane(row, detail.events.get(row.item, ()), now)) is not None
    ]
    starts = [lane.start for lane in lanes] + ([detail.started] if detail.started else [])
    ends = [lane.end for lane in lanes] + ([detail.ended] if detail.ended else [])
    start = min(starts) if starts else now
    end = max(ends) if ends else start
    keys = _keys(detail)
    for track in keys:  # a cool-down past the run's end is cut at the axis's end
        track.cooldowns = [
            KeyMark(c.start, min(c.end, max(end, c.start)), c.outcome, c.item) for c in track.cooldowns
        ]
    return Timeline(start, max(end, start), lanes, keys)

"""The timeline and the key pool as SVG shapes: numbers and labels, no markup.

The templates turn these shapes into inline SVG (escaping every label), so the page needs no
chart library, no script and no build step, and the exported file draws the same chart.
One user unit is one pixel: a lane of `d` seconds is `d * scale` wide (`scale` is on the SVG).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from agentos.dashboard.timeline import SegmentKind, Timeline

LABEL_W = 150.0  # the item ids, left of the axis
PLOT_W = 900.0
LANE_H = 30.0
AXIS_H = 26.0
KEY_H = 22.0
PAD = 8.0
NODE_COLOURS = 6
STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    cls: str
    title: str
    item: str | None = None  # data-item: a lane's item id
    kind: str | None = None  # data-kind: lane, node, permit, pause, retry, round, call, 429, cooldown


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    cls: str = "label"
    anchor: str = "start"


@dataclass(frozen=True)
class Rule:
    x1: float
    y1: float
    x2: float
    y2: float
    cls: str = "tick"


@dataclass
class Chart:
    name: str  # timeline or keypool: the SVG's class
    width: float
    height: float
    scale: float  # pixels per second
    start: float  # wall-clock seconds at x = LABEL_W
    boxes: list[Box] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    empty: str | None = None  # what to say when there is nothing to draw


def node_class(node: str) -> str:
    """A stable colour per node name (N1_draft is the same colour in every lane and run):
    by its number for the workflows' `N<digit>_...` nodes, else by a hash of the name."""
    if len(node) > 1 and node[0] == "N" and node[1].isdigit():
        return f"node-{int(node[1]) % NODE_COLOURS}"
    return f"node-{int(hashlib.sha256(node.encode()).hexdigest(), 16) % NODE_COLOURS}"


def clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _axis(chart: Chart, span: float, top: float, bottom: float) -> None:
    step = next((s for s in STEPS if span / s <= 10), STEPS[-1])
    n = 0
    while n * step <= span + 1e-9 and n <= 200:
        x = LABEL_W + n * step * chart.scale
        chart.rules.append(Rule(x, top, x, bottom))
        chart.labels.append(Label(x, top - 8, "+" + clock(n * step), "axis", "middle"))
        n += 1


def _framed(name: str, timeline: Timeline, rows: int, row_h: float, empty: str) -> Chart:
    """A chart of `rows` rows over the run's span, with its time axis; `empty` says why
    there is nothing to draw when `rows` is 0."""
    height = AXIS_H + PAD + max(1, rows) * row_h + PAD
    chart = Chart(name, LABEL_W + PLOT_W + 40, height, PLOT_W / timeline.span, timeline.start)
    if rows:
        _axis(chart, timeline.span, AXIS_H, height - PAD)
    else:
        chart.empty = empty
    return chart


def timeline_chart(timeline: Timeline) -> Chart:
    lanes = timeline.lanes
    chart = _framed("timeline", timeline, len(lanes), LANE_H, "No item has started yet.")
    if chart.empty:
        return chart
    scale = chart.scale

    def x_of(t: float) -> float:
        return LABEL_W + (t - timeline.start) * scale

    for row, lane in enumerate(lanes):
        y = AXIS_H + PAD + row * LANE_H
        chart.labels.append(Label(LABEL_W - 8, y + LANE_H / 2 + 4, lane.item, "lane-label", "end"))
        state = "running" if lane.running else lane.status
        chart.boxes.append(
            Box(
                x_of(lane.start),
                y + 3,
                lane.duration * scale,
                LANE_H - 6,
                f"lane status-{_css(state)}",
                f"{lane.item}: {state}, {clock(lane.duration)}",
                lane.item,
                "lane",
            )
        )
        # nodes first, the waits inside them drawn on top
        for seg in sorted(lane.segments, key=lambda s: (s.kind is not SegmentKind.NODE, s.start)):
            if seg.kind is SegmentKind.NODE:
                cls, top, h = f"node {node_class(seg.label)}", y + 6, LANE_H - 16
            else:
                cls, top, h = f"wait {seg.kind.value}", y + 6, LANE_H - 16
            chart.boxes.append(
                Box(
                    x_of(seg.start),
                    top,
                    max((seg.end - seg.start) * scale, 1.0),
                    h,
                    cls,
                    f"{lane.item}: {seg.label}, {clock(seg.end - seg.start)}",
                    lane.item,
                    seg.kind.value,
                )
            )
        for span in lane.rounds:
            chart.boxes.append(
                Box(
                    x_of(span.start),
                    y + LANE_H - 9,
                    max((span.end - span.start) * scale, 1.0),
                    4,
                    f"round round-{span.number % 2} verdict-{_css(span.verdict)}",
                    f"{lane.item}: round {span.number}, {span.verdict}, {clock(span.end - span.start)}",
                    lane.item,
                    "round",
                )
            )
    return chart


def keypool_chart(timeline: Timeline) -> Chart:
    tracks = timeline.keys
    chart = _framed("keypool", timeline, len(tracks), KEY_H, "No call named a key yet.")
    if chart.empty:
        return chart
    scale = chart.scale

    def x_of(t: float) -> float:
        return LABEL_W + (max(t, timeline.start) - timeline.start) * scale

    for row, track in enumerate(tracks):
        y = AXIS_H + PAD + row * KEY_H
        refused = len(track.refusals)
        chart.labels.append(Label(LABEL_W - 8, y + KEY_H / 2 + 4, track.key, "lane-label", "end"))
        for c in track.cooldowns:
            chart.boxes.append(
                Box(
                    x_of(c.start),
                    y + 2,
                    max((c.end - c.start) * scale, 1.0),
                    KEY_H - 4,
                    "cooldown",
                    f"{track.key}: cooling, {clock(c.end - c.start)} ({c.item})",
                    None,
                    "cooldown",
                )
            )
        for c in track.calls:
            refusal = c in track.refusals
            chart.boxes.append(
                Box(
                    x_of(c.start),
                    y + 6,
                    max((c.end - c.start) * scale, 1.5),
                    KEY_H - 12,
                    "call-refused" if refusal else ("call" if c.outcome == "ok" else "call-error"),
                    f"{track.key}: {c.outcome} ({c.item}), {clock(c.end - c.start)}",
                    None,
                    "429" if refusal else "call",
                )
            )
        for c in track.ledger:  # every run's calls on the key, thin, under this run's
            chart.boxes.append(
                Box(
                    x_of(c.start),
                    y + KEY_H - 5,
                    max((c.end - c.start) * scale, 1.5),
                    3,
                    "ledger-refused" if c.outcome == "rate_limited" else "ledger-call",
                    f"{track.key}: {c.outcome}, by {c.item} (key ledger)",
                    None,
                    "ledger",
                )
            )
        chart.labels.append(
            Label(LABEL_W + PLOT_W + 36, y + KEY_H / 2 + 4, f"{len(track.calls)}/{refused}", "count", "end")
        )
    return chart


def _css(text: str) -> str:
    """A status or verdict as a class-name fragment: letters, digits and dashes only."""
    return "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower())[:30] or "unknown"

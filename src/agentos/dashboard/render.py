"""Pages and the exported timeline, rendered by Jinja2 with autoescape on for every template.

Everything shown comes from untrusted files (an issue title, a log line, a verdict), so no
value is ever marked safe except our own stylesheet, read from the package. The exported
file carries its own Content-Security-Policy: no script at all may run in it.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any

import jinja2

from agentos import __version__
from agentos.dashboard import drawing, timeline
from agentos.dashboard.records import ItemDetail, RunDetail, RunRow, Spend
from agentos.runs.spend import format_cost, format_tokens
from agentos.runs.summary import LABELS

FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
MOCK_NOTE = "offline mock provider: no real LLM; token counts are estimates"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    try:
        return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return "?"


def _iso(text: str) -> str:
    """`2026-12-04T06:25:39+00:00` as `2026-12-04 06:25:39`; any other text as it is."""
    if len(text) >= 19 and text[4] == "-" and text[10] == "T":
        return text[:19].replace("T", " ")
    return text


def _seconds(value: float | None) -> str:
    return "-" if value is None else drawing.clock(value)


def _tokens(spend: Spend) -> str:
    if spend.input_tokens is None or spend.output_tokens is None:
        return "-"
    if not spend.input_tokens and not spend.output_tokens:
        return "-"
    return format_tokens(spend.input_tokens, spend.output_tokens, spend.estimated)


def _cost(spend: Spend) -> str:
    if spend.cost is None:
        return "-"
    return ("~" if spend.estimated else "") + format_cost(spend.cost)


def _totals(totals: dict[str, int]) -> str:
    parts = [f"{n} {LABELS.get(k, k)}" for k, n in totals.items() if k != "total" and n]
    total = totals.get("total")
    return (f"{total}: " if total is not None else "") + (", ".join(parts) or "none yet")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("agentos.dashboard", "templates"),
        autoescape=True,  # every template, .svg included
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(iso=_iso, when=_when, seconds=_seconds, tokens=_tokens, cost=_cost, totals=_totals)
    env.globals.update(version=__version__, mock_note=MOCK_NOTE, label=lambda s: LABELS.get(s, s))
    return env


ENV = _environment()


def stylesheet() -> str:
    return resources.files("agentos.dashboard").joinpath("static/style.css").read_text(encoding="utf-8")


def _uses_mock(run: RunRow, detail: RunDetail | None = None) -> bool:
    if run.spend.estimated:
        return True
    if detail is None:
        return False
    return any(e.text("provider") == "mock" for evs in detail.events.values() for e in evs[:50])


def run_context(detail: RunDetail) -> dict[str, Any]:
    line = timeline.build(detail)
    return {
        "detail": detail,
        "run": detail.run,
        "timeline": line,
        "lanes_chart": drawing.timeline_chart(line),
        "keys_chart": drawing.keypool_chart(line),
        "mock": _uses_mock(detail.run, detail),
    }


def page(main: str, title: str, live: str | None, stamp: str, fragment: bool, **context: Any) -> str:
    """A page (or, for a live update, only its `<main>`'s content). `live`: the run whose
    changes the page follows ("" for the runs list; None: not live); `stamp`: the records'
    stamp read before them, so a change made meanwhile is not missed."""
    if fragment:
        return ENV.get_template(main).render(**context)
    return ENV.get_template("base.html").render(main=main, title=title, live=live, stamp=stamp, **context)


def runs_page(rows: list[RunRow], stamp: str = "", fragment: bool = False) -> str:
    return page("runs.html", "Runs", "", stamp, fragment, rows=rows)


def run_page(detail: RunDetail, stamp: str = "", fragment: bool = False) -> str:
    name = detail.run.name
    return page("run.html", f"Run {name}", name, stamp, fragment, **run_context(detail))


def item_page(detail: ItemDetail, stamp: str = "", fragment: bool = False) -> str:
    title = f"{detail.item.item} of run {detail.run.name}"
    return page("item.html", title, detail.run.name, stamp, fragment, item_detail=detail, run=detail.run)


def error_page(status: int, message: str) -> str:
    return ENV.get_template("base.html").render(
        main="error.html", title=f"{status}", live=None, stamp="", status=status, message=message
    )


def timeline_file(detail: RunDetail) -> str:
    """`agentos show --timeline`: one self-contained HTML file, inline SVG and CSS, no script."""
    return ENV.get_template("timeline_file.html").render(
        csp=FILE_CSP, css=stylesheet(), **run_context(detail)
    )

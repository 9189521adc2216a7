"""The end-of-run table as plain text (files, CI logs) and on a terminal."""

from __future__ import annotations

import io

from agentos.runs.item_record import ItemRecord
from agentos.runs.summary import render_table


def _item(name: str, status: str, error: str | None = None) -> ItemRecord:
    return ItemRecord(name, status, rounds=2, duration_s=1.25, log=f"/tmp/logs/{name}.log", error=error)


def test_plain_table_has_no_trailing_padding() -> None:
    out = io.StringIO()
    render_table([_item("LLD-1", "approved"), _item("LLD-22", "failed", "boom")], out, tty=False)
    lines = out.getvalue().splitlines()
    assert any("LLD-22" in line and "boom (/tmp/logs/LLD-22.log)" in line for line in lines)
    assert all(line == line.rstrip() for line in lines), lines


def test_error_text_with_markup_is_printed_literally() -> None:
    out = io.StringIO()
    render_table([_item("LLD-3", "failed", "provider said [/bold] [red]x")], out, tty=False)
    assert "provider said [/bold] [red]x" in out.getvalue()


def test_terminal_table_keeps_rows() -> None:
    out = io.StringIO()
    render_table([_item("LLD-1", "approved")], out, tty=True)
    assert "LLD-1" in out.getvalue()

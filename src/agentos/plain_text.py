"""Text as agentos keeps it: Unicode without control characters.

Inputs may arrive with a byte-order mark, in the wrong encoding, or with NUL bytes and
terminal escapes; provider answers may carry the same. What agentos writes (LLDs, issues,
lineage) and shows keeps newlines and tabs only: a raw escape sequence in a design
document would rewrite the terminal of whoever `cat`s it.
"""

from __future__ import annotations

import codecs

_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_CONTROLS = {c: None for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0))}


def foreign_encoding(data: bytes) -> str | None:
    """`UTF-16` or `UTF-32` when the bytes carry that byte-order mark, or look like UTF-16
    (every other byte NUL) without one; None when they may be UTF-8."""
    for bom, name in _BOMS:  # UTF-32 LE starts with the UTF-16 LE mark: longest first
        if data.startswith(bom):
            return name
    sample = data[:512]
    if len(sample) >= 8:
        for start in (0, 1):
            if sample[start::2].count(0) >= len(sample) // 2 * 0.9:
                return "UTF-16"
    return None


def strip_bom(data: bytes) -> bytes:
    return data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data


def strip_controls(text: str) -> str:
    """`text` without C0/C1 control characters (NUL, ESC, ...): newlines and tabs stay,
    and CRLF and lone CRs become newlines."""
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROLS)

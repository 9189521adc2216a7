"""Text as agentos keeps it: Unicode without control characters.

Inputs may arrive with a byte-order mark, in the wrong encoding, or with NUL bytes and
terminal escapes; provider answers may carry the same. What agentos writes (LLDs, issues,
lineage) and shows keeps newlines and tabs only: a raw escape sequence in a design
document would rewrite the terminal of whoever `cat`s it.
"""

from __future__ import annotations

import codecs
import re

_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
# A whole terminal escape sequence goes, not only its ESC: "\x1b[31mred" is "red", not
# "[31mred". CSI (ESC [ or 0x9B) with its parameters; OSC, DCS, SOS, PM, APC strings up
# to BEL or ST (bounded, so a string never ended costs linear time); then two-byte escapes.
_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]{0,64}[ -/]{0,16}[@-~]"
    r"|(?:\x1b[\]P^_X]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]{0,4096}(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]{0,16}[0-~]"
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
    text = _SEQUENCES.sub("", text) if "\x1b" in text or _has_c1(text) else text
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROLS)


def _has_c1(text: str) -> bool:
    return any("\x80" <= c <= "\x9f" for c in text)

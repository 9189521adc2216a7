"""Every AGENTOS_* variable is read through agentos.core.environment, and the wiki lists them all."""

from __future__ import annotations

import re

from agentos.core import environment
from tests.helpers.cli import ROOT, run_script

DIRECT_READ = re.compile(r"""(os\.environ(\.get)?\s*[\[(]\s*|getenv\(\s*)["']AGENTOS_""")


def test_no_module_reads_an_agentos_variable_directly() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "src" / "agentos").rglob("*.py")
        if path.name != "environment.py" and DIRECT_READ.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_every_variable_is_documented_and_the_page_is_current() -> None:
    names = [v.name for v in environment.VARIABLES]
    assert len(names) == len(set(names)) and all(n.startswith("AGENTOS_") for n in names)
    result = run_script("environment_doc.py", "--check")
    assert result.returncode == 0, result.stderr


def test_values_are_read_at_call_time_and_empty_means_unset() -> None:
    assert environment.HOME.get({"AGENTOS_HOME": ""}) is None
    assert environment.HOME.get({"AGENTOS_HOME": "/x"}) == "/x"
    assert environment.key_env("openai") == "AGENTOS_KEY_OPENAI"

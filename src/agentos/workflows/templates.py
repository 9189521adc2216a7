"""Templates and prompts: plain files shipped with the package, overridable per workspace.

A file in `<workspace>/.agentos/templates/<name>` replaces the packaged one of that name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template

from agentos.errors import ConfigError

TEMPLATE_NAMES = (
    "lld_template.md",
    "issue_template.md",
    "lld_drafter.md",
    "lld_reviewer.md",
    "issue_drafter.md",
    "issue_reviewer.md",
)


class Templates:
    def __init__(self, override_dir: Path | None = None) -> None:
        self._override_dir = override_dir
        self._cache: dict[str, str] = {}

    def text(self, name: str) -> str:
        if name not in TEMPLATE_NAMES:
            raise ConfigError(f"unknown template {name!r}; known: {', '.join(TEMPLATE_NAMES)}")
        if name not in self._cache:
            override = self._override_dir / name if self._override_dir else None
            if override is not None and override.is_file():
                self._cache[name] = override.read_text(encoding="utf-8")
            else:
                packaged = resources.files("agentos.workflows") / "templates" / name
                self._cache[name] = packaged.read_text(encoding="utf-8")
        return self._cache[name]

    def render(self, name: str, **values: object) -> str:
        """Fill `$placeholders`; unknown ones are left as they are rather than failing."""
        return Template(self.text(name)).safe_substitute({k: str(v) for k, v in values.items()})

"""Templates and prompts: plain files shipped with the package, overridable per workspace.

A file in `<workspace>/.agentos/templates/<name>` replaces the packaged one of that name.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from string import Template

from agentos.core.errors import ConfigError
from agentos.core.workspace_files import DEFAULT_MAX_ITEM_BYTES, read_text

TEMPLATE_NAMES = (
    "lld_template.md",
    "issue_template.md",
    "lld_drafter.md",
    "lld_reviewer.md",
    "issue_drafter.md",
    "issue_reviewer.md",
)


class Templates:
    def __init__(
        self,
        override_dir: Path | None = None,
        workspace_root: Path | None = None,
        max_bytes: int = DEFAULT_MAX_ITEM_BYTES,
    ) -> None:
        self._override_dir = override_dir
        self._root = workspace_root if workspace_root is not None else override_dir
        self._max_bytes = max_bytes
        self._cache: dict[str, str] = {}

    def text(self, name: str) -> str:
        if name not in TEMPLATE_NAMES:
            raise ConfigError(f"unknown template {name!r}; known: {', '.join(TEMPLATE_NAMES)}")
        if name not in self._cache:
            override = self._override_dir / name if self._override_dir else None
            if override is not None and os.path.lexists(override):
                # Untrusted workspace data: a symlink out, a FIFO or a huge file is refused by name.
                self._cache[name] = read_text(
                    override, self._root, what="template override", max_bytes=self._max_bytes, errors="strict"
                )
            else:
                packaged = resources.files("agentos.workflows") / "templates" / name
                self._cache[name] = packaged.read_text(encoding="utf-8")
        return self._cache[name]

    def render(self, name: str, **values: object) -> str:
        """Fill `$placeholders`; unknown ones are left as they are rather than failing."""
        return Template(self.text(name)).safe_substitute({k: str(v) for k, v in values.items()})

"""Mount points, so that deleting a folder never reaches into another mount.

Comparing `st_dev` finds a different file system mounted inside a folder, but not a bind
mount of the *same* file system (`mount --bind ~/work run-folder/mnt`): its `st_dev` is
the folder's own. Linux lists every mount point of this process in /proc/self/mountinfo,
bind mounts included; elsewhere the list is empty and the `st_dev` check stands alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
MAX_MOUNTINFO_BYTES = 16 * 1024 * 1024  # thousands of mounts; never read an endless file
_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo writes a space, tab, newline or backslash in a path as `\\040` and so on."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_points() -> list[Path]:
    """Every mount point this process sees; [] where the kernel does not say."""
    try:
        with MOUNTINFO.open("rb") as handle:
            raw = handle.read(MAX_MOUNTINFO_BYTES)
    except OSError:
        return []
    points: list[Path] = []
    for line in raw.decode("utf-8", "replace").splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(Path(_unescape(fields[4])))
    return points


def mounts_inside(folder: Path) -> list[Path]:
    """Mount points strictly inside `folder` (resolved), as paths relative to it."""
    real = Path(os.path.realpath(folder))
    return sorted({p.relative_to(real) for p in mount_points() if p != real and p.is_relative_to(real)})

"""Tell a disk problem (full, read-only, I/O error) from a corrupt file or a bug.

SQLite reports a full disk as `OperationalError: database or disk is full` and a failing
one as `disk I/O error`. Calling those "corrupt, run with --fresh" would make the user
throw away good checkpoints; calling them "unexpected" would print a traceback.
"""

from __future__ import annotations

import errno
import sqlite3

DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM}
SQLITE_DISK_MESSAGES = (
    "database or disk is full",
    "disk i/o error",
    "attempt to write a readonly database",
    "unable to open database file",
)


def disk_problem(exc: BaseException) -> str | None:
    """A short cause when `exc` is a disk problem, else None."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return str(exc) if any(m in text for m in SQLITE_DISK_MESSAGES) else None
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return exc.strerror or str(exc)
    return None

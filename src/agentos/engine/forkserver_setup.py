"""Imported last in the fork server's preload list: readies the preloaded server for forking.

- `gc.freeze()` moves every preloaded object to the permanent generation, so a forked
  worker's garbage collector never walks (and so never copy-on-write duplicates) the
  preloaded heap. It saves ~100 ms on each worker's first steps. The preload ran with
  the collector off (`forkserver_begin`); it is turned back on here, before any fork.
- multiprocessing re-runs the parent's `__main__` module in each child. Under
  `python -m agentos.cli.lld` that module is already preloaded, and runpy warns about
  it on the child's stderr before the worker has redirected its output, which would
  put an unprefixed line on the console. The warning is harmless, so it is filtered.
- A paced run's shared HTTP clients are built here once (their TLS setup costs ~50 ms of
  CPU), so no worker builds its own before its first call.
"""

import gc
import warnings

from agentos.keys.paced_provider import prewarm

warnings.filterwarnings(
    "ignore", message=r".*found in sys\.modules after import of package.*", category=RuntimeWarning
)
prewarm()  # the paced run's HTTP clients, built once here and inherited by every worker
gc.collect()
gc.freeze()
gc.enable()  # forkserver_begin turned it off for the preload

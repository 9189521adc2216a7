"""Imported first in the fork server's preload list: the garbage collector stays off while
the stack is imported.

Importing LangGraph and the SDKs creates hundreds of thousands of objects and no garbage
worth collecting; with the collector off the preload takes about 10% less time, which the
first items wait for. `forkserver_setup` (imported last) collects once, freezes the heap
and turns the collector back on, so every worker starts with it on.
"""

import gc

gc.disable()

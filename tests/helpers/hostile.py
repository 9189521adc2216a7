"""Worker entry points that misbehave on purpose, run by the real process engine."""

from __future__ import annotations

import os
import signal
import sys
import time
from multiprocessing.connection import Connection

from agentos.workflows.item import ItemJob, ItemOutcome, ItemStatus


def hostile_main(job: ItemJob, output: Connection, result: Connection, env: dict[str, str]) -> None:
    os.dup2(output.fileno(), 1)
    os.dup2(output.fileno(), 2)
    out = os.fdopen(1, "wb", buffering=0, closefd=False)
    kind = job.key
    if kind == "halfline":
        out.write(b"first half ")
        time.sleep(0.6)
        out.write(b"second half\n")
    elif kind == "megabyte":
        out.write(b"x" * 1_000_000)
        out.write(b"\nafter the megabyte\n")
    elif kind == "badutf8":
        out.write(b"bad bytes \xff\xfe\xc3 here\n")
    elif kind == "chatty":
        for i in range(300):
            out.write(f"chatty line {i:03d} with some padding to make it longer\n".encode())
    elif kind == "crash":
        out.write(b"about to crash\n")
        os._exit(3)
    elif kind == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif kind == "garbage":
        result.send("this is not an outcome")
        os._exit(0)
    elif kind == "leaky":
        out.write(f"oops, the key is {env['LEAKED']}\n".encode())
    elif kind == "stderr":
        sys.stderr.write("to stderr\n")
        sys.stderr.flush()
    result.send(ItemOutcome(ItemStatus.APPROVED, rounds=1).to_dict())
    os._exit(0)

"""Worker entry points that misbehave on purpose, run by the real process engine."""

from __future__ import annotations

import os
import signal
import sys
import time
from multiprocessing.connection import Connection
from typing import BinaryIO

from agentos.core.outcome import CredentialProblem, ItemOutcome, ItemStatus
from agentos.core.progress_note import ProgressNote
from agentos.workflows.item import ItemJob


def hostile_main(job: ItemJob, output: Connection, result: Connection, env: dict[str, str]) -> None:
    os.dup2(output.fileno(), 1)
    os.dup2(output.fileno(), 2)
    out = os.fdopen(1, "wb", buffering=0, closefd=False)
    kind = job.key
    if kind.startswith(("ignore-term", "sigstop", "never-answers")):
        stuck(kind, out)
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
    elif kind == "splitkey":  # the key in two writes, far apart in time: two reads
        key = env["LEAKED"].encode()
        out.write(b"the key is " + key[:7])
        time.sleep(0.4)
        out.write(key[7:] + b" and again " + key[:3])
        time.sleep(0.4)
        out.write(key[3:] + b"\n")
        out.write(b"y" * (65536 - 12) + key + b"\n")  # across the 64 KiB read boundary
        out.write(b"unterminated tail " + key[:-1])
        time.sleep(0.3)
        out.write(key[-1:])  # the key ends the stream, with no newline
    elif kind == "quiet":  # a long silent call, as a real LLM call is
        out.write(b"calling\n")
        time.sleep(3)
        out.write(b"answered\n")
    elif kind == "notes":  # progress notes, garbage among them, more than a pipe's buffer holds
        result.send_bytes(ProgressNote(node="draft", round=1, key="team-a", tokens=10).encode())
        result.send_bytes(b'{"op": "progress", "tokens": "lots"}')  # a wrong type: dropped
        result.send_bytes(b'{"not": "a note"}')  # JSON that is no note: dropped
        result.send_bytes(b'{"op": "progress", "node": "\\u001b[2Jboom"}')  # an escape: shown as ?
        for i in range(3000):  # ~100 KiB: it only gets through if the coordinator reads as they come
            result.send_bytes(ProgressNote(tokens=i).encode())
        out.write(b"noted\n")
    elif kind == "ratelimited":  # stopped on a 429 after its last checkpoint: waits for a key
        result.send(
            ItemOutcome(
                ItemStatus.CREDENTIAL, credential_problem=CredentialProblem.RATE_LIMITED, key_name="k1"
            )
        )
        os._exit(0)
    elif kind == "stderr":
        sys.stderr.write("to stderr\n")
        sys.stderr.flush()
    result.send(ItemOutcome(ItemStatus.APPROVED, rounds=1))
    os._exit(0)


def stuck(kind: str, out: BinaryIO) -> None:
    """Workers that never end by themselves: only the coordinator's KILL ends them.

    `ignore-term` ignores SIGTERM (like a worker spinning in C code), `sigstop` stops
    itself and then ignores SIGTERM, `never-answers` is a provider call that never
    returns (and so never reaches a point where it would honour a stop).
    """
    os.setpgid(0, 0)  # like the real worker: its own process group
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    out.write(f">>> Worker process {os.getpid()} started ({kind})\n".encode())
    if kind.startswith("sigstop"):
        os.kill(os.getpid(), signal.SIGSTOP)
    while True:
        time.sleep(1)

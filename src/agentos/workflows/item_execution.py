"""Run one item to an honest outcome: build the graph, resume or start, report.

Used in-process for a single item and inside each worker process for batch runs.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from langgraph.graph.state import CompiledStateGraph

from agentos.backend.postgres.connection import BackendUnavailable, is_connection_lost
from agentos.backend.postgres.item_session import ItemSession, open_session
from agentos.core import progress_note
from agentos.core.errors import (
    AgentosError,
    BackendLost,
    CheckpointError,
    DiskError,
    Interrupted,
    InvalidSpec,
    StillInvalid,
)
from agentos.core.events import AuditWriter, Event, EventBus, EventType
from agentos.core.file_lock import FileLock
from agentos.core.outcome import ItemOutcome, ItemStatus
from agentos.core.paths import Workspace
from agentos.core.printing import STDOUT, Console
from agentos.core.stop_flag import StopFlag
from agentos.keys.paced_provider import paced_provider
from agentos.keys.problems import outcome_from_error
from agentos.keys.sources import Credential, credentials_from_env
from agentos.llm.base import Provider
from agentos.llm.errors import AuthError, QuotaExhausted, RateLimited
from agentos.llm.registry import DEFAULT_TIMEOUT_S, ProviderSpec, create_provider
from agentos.llm.retry import policy_from_env
from agentos.llm.usage import UsageTotals
from agentos.tracker.factory import open_tracker
from agentos.workflows import invalid_inputs
from agentos.workflows.checkpoint import CheckpointStore, db_path_from_env
from agentos.workflows.checkpoint_identity import Owner, owner_for
from agentos.workflows.context import RunContext, WorkflowState
from agentos.workflows.disk import disk_problem
from agentos.workflows.issue import build_issue_graph
from agentos.workflows.item import ItemJob, WorkflowKind
from agentos.workflows.item_lock import skipped_message, worker_lock_path
from agentos.workflows.lld import build_lld_graph
from agentos.workflows.pending import already_done
from agentos.workflows.team_checkpoint import BackendCheckpointStore
from agentos.workflows.team_outputs import collect
from agentos.workflows.templates import Templates


def _provider(
    spec: ProviderSpec,
    credentials: Mapping[str, Credential],
    console: Console = STDOUT,
    timeout_s: float | None = None,
) -> Provider:
    cred = credentials.get(spec.provider)
    paced = paced_provider(spec, cred, console, timeout_s)  # under a pacing coordinator: a key per call
    if paced is not None:
        return paced
    return create_provider(
        spec,
        secret=cred.secret if cred else None,
        key_name=cred.name if cred else None,
        timeout_s=timeout_s,
    )


def _compile(kind: WorkflowKind, saver: Any) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = build_lld_graph() if kind is WorkflowKind.LLD else build_issue_graph()
    return builder.compile(checkpointer=saver)


def run_in_worker(job: ItemJob, stop: StopFlag, console: Console) -> ItemOutcome:
    """The item runner of a worker process (`agentos.engine.worker`): its keys come from the
    environment, and it holds the item's worker lock for its life, so an orphan of a killed
    coordinator still has it; the lock dies with the process, however it exits."""
    providers = {ProviderSpec.parse(job.drafter).provider, ProviderSpec.parse(job.reviewer).provider}
    credentials = credentials_from_env(providers)
    mine = FileLock(worker_lock_path(job))
    if not mine.try_acquire():
        console.line(f"skipped: {skipped_message(mine.holder)}")
        return ItemOutcome(ItemStatus.SKIPPED, error=skipped_message(mine.holder))
    try:
        return run_item(job, stop=stop, credentials=credentials, console=console)
    finally:
        mine.release()  # its file goes too


def run_item(
    job: ItemJob,
    *,
    stop: StopFlag,
    credentials: Mapping[str, Credential],
    console: Console = STDOUT,
) -> ItemOutcome:
    """Run `job` until approved, out of rounds, failed, interrupted or short of a key.

    The checkpoint DB is deleted only after success; otherwise it is kept to resume.
    """
    team: ItemSession | None = None
    if job.backend_url:  # the team backend: its worker lock, on the session that writes checkpoints
        try:
            team = open_session(
                job.backend_url, job.workspace_identity, job.kind.db_prefix, job.key, job.backend_run
            )
        except BackendUnavailable as exc:
            console.line(f"INTERRUPTED: {exc}")
            return ItemOutcome(ItemStatus.INTERRUPTED, error=str(exc), backend_lost=True)
        if team is None:
            message = "being processed on another machine (the backend holds its lock)"
            console.line(f"skipped: {message}")
            return ItemOutcome(ItemStatus.SKIPPED, error=message)
    try:
        return _run_item(job, stop=stop, credentials=credentials, console=console, team=team)
    finally:
        if team is not None:
            team.close()


def _run_item(
    job: ItemJob,
    *,
    stop: StopFlag,
    credentials: Mapping[str, Credential],
    console: Console,
    team: ItemSession | None,
) -> ItemOutcome:
    workspace = Workspace(Path(job.workspace), job.max_item_bytes)
    done = already_done(job)  # checked under the item's lock: another run may have finished it
    if done is not None:
        console.line(f"skipped: {done}")
        return ItemOutcome(ItemStatus.SKIPPED, error=done)
    events = EventBus(job.item_id)
    events.subscribe(AuditWriter(Path(job.audit_path)))
    store: CheckpointStore | BackendCheckpointStore = (
        BackendCheckpointStore(team)
        if team is not None
        else CheckpointStore(db_path_from_env(Path(job.db_path)))
    )
    where = store.where if isinstance(store, BackendCheckpointStore) else job.db_path
    started = time.monotonic()
    drafter_spec, reviewer_spec = ProviderSpec.parse(job.drafter), ProviderSpec.parse(job.reviewer)
    outcome: ItemOutcome
    graph: CompiledStateGraph[Any, Any, Any, Any] | None = None
    config: Any = None
    usage = UsageTotals()  # every call this process makes, whatever the outcome
    events.subscribe(functools.partial(_progress, usage))  # the coordinator's live panel
    owner: Owner | None = None
    invalid_db = False
    try:
        tracker = open_tracker(job.tracker, workspace)
        owner = owner_for(job.kind, job.key, workspace, tracker)
        if team is not None:  # the thread is the workspace's on every machine, not this clone's path
            owner = Owner(job.workspace_identity, owner.workflow, owner.item, owner.input_sha256)
            elsewhere = None if job.force else team.done_elsewhere(owner.input_sha256)
            if elsewhere is not None:
                message = f"{elsewhere.message()}; `agentos pull {job.item_id}` writes its output here"
                console.line(f"skipped: {message}")
                return ItemOutcome(ItemStatus.SKIPPED, error=message)
        invalid_inputs.check(job, owner.input_sha256)  # failed validation before: no checkpoint, no call
        store.prepare(owner, job.fresh, console)
        ctx = RunContext(
            item_id=job.item_id,
            workspace=workspace,
            lineage_dir=workspace.lineage_dir(job.item_id),
            drafter=_provider(drafter_spec, credentials, console, job.provider_timeout_s),
            reviewer=_provider(reviewer_spec, credentials, console, job.provider_timeout_s),
            templates=Templates(workspace.templates_override_dir, workspace.root, workspace.max_item_bytes),
            events=events,
            stop=stop,
            tracker=tracker,
            max_iterations=job.max_iterations,
            labels=list(job.labels),
            console=console,
            team=team,
            structured_output=job.structured_output,
            usage=usage,
            call_timeout_s=job.provider_timeout_s or DEFAULT_TIMEOUT_S,
            retry=policy_from_env(),
        )
        if job.max_output_tokens:
            ctx.max_output_tokens = job.max_output_tokens
        graph = _compile(job.kind, store.open())
        config = {
            "configurable": {"thread_id": team.thread_id if team is not None else job.item_id},
            "recursion_limit": 4 * job.max_iterations + 20,
        }
        try:
            snapshot = graph.get_state(config)
        except Exception as exc:
            if team is not None and is_connection_lost(exc):
                raise team.lost(exc) from None
            raise CheckpointError(Path(where), f"{type(exc).__name__}: {exc}") from None
        # The next step's nodes. One whose result was saved when the process died before its
        # step's checkpoint (kill -9 in that gap) is among them, with its writes: resuming
        # applies them and does not run it again. `snapshot.next` leaves such a node out, so
        # on its own it would make an unfinished thread look new, and start it over.
        kept = [task.name for task in snapshot.tasks if task.name not in snapshot.next]
        resumed = bool(snapshot.next or kept)
        if resumed:
            at = [*snapshot.next, *(f"the end of {name} (its result was saved)" for name in kept)]
            console.line(f">>> Resuming from checkpoint {where} at {', '.join(at)}")
            events.emit(EventType.WORKFLOW_RESUME, next=list(snapshot.next), kept=kept)
            graph_input: WorkflowState | None = None
        elif snapshot.values.get("status"):
            resumed = True  # finished earlier but the DB was not removed: report, do not redo
            graph_input = None
        else:
            events.emit(
                EventType.WORKFLOW_START,
                workflow=job.kind.value,
                drafter=str(drafter_spec),
                reviewer=str(reviewer_spec),
                max_iterations=job.max_iterations,
            )
            graph_input = {"key": job.key}
        if graph_input is None and not (snapshot.next or kept):
            final = cast(WorkflowState, snapshot.values)
        else:
            final = cast(WorkflowState, graph.invoke(graph_input, config, context=ctx, durability="sync"))
        status = ItemStatus(final["status"])
        outcome = ItemOutcome(
            status,
            rounds=final.get("rounds", 0),
            output=final.get("output"),
            filed_number=final.get("filed_number"),
            resumed=resumed,
        )
    except BackendLost as exc:
        outcome = ItemOutcome(ItemStatus.INTERRUPTED, error=str(exc), backend_lost=True)
    except BackendUnavailable as exc:  # mid-item: the backend went away, or refused us
        outcome = ItemOutcome(ItemStatus.INTERRUPTED, error=str(exc), backend_lost=True)
    except Interrupted as exc:
        outcome = ItemOutcome(ItemStatus.INTERRUPTED, error=str(exc), rounds=_rounds_so_far(graph, config))
    except StillInvalid as exc:
        outcome = ItemOutcome(ItemStatus.FAILED, error=str(exc))
    except InvalidSpec as exc:
        outcome = ItemOutcome(ItemStatus.FAILED, error=str(exc))
        if owner is not None:  # it can never pass as it is: keep no checkpoint, remember why
            invalid_inputs.record(job, exc.reason, owner.input_sha256)
            invalid_db = True
    except (RateLimited, QuotaExhausted, AuthError) as exc:
        outcome = outcome_from_error(exc, drafter_spec.provider)
    except AgentosError as exc:
        outcome = ItemOutcome(ItemStatus.FAILED, error=str(exc))
    except Exception as exc:
        cause = disk_problem(exc)
        if team is not None and is_connection_lost(exc):  # a checkpoint write found the session gone
            outcome = ItemOutcome(ItemStatus.INTERRUPTED, error=str(team.lost(exc)), backend_lost=True)
        elif cause is not None:  # full or failing disk mid-run: this item fails, clearly, resumable
            # A write that did not name its file: never guess the checkpoint (the wrong disk)
            where = getattr(exc, "filename", None) or f"{job.workspace} or the checkpoint {job.db_path}"
            outcome = ItemOutcome(ItemStatus.FAILED, error=str(DiskError(where, cause)))
        else:
            console.line(traceback.format_exc().rstrip())
            outcome = ItemOutcome(ItemStatus.FAILED, error=f"unexpected {type(exc).__name__}: {exc}")
    finally:
        store.close()
    outcome.usage = usage.to_dict()
    if team is not None and outcome.status.succeeded and owner is not None:
        try:  # recorded before the checkpoint goes: every machine then lists it as done here
            team.record_result(
                owner.input_sha256, outcome.status.value, outcome.output, collect(job, workspace, outcome)
            )
        except Exception as exc:
            if not is_connection_lost(exc):
                raise
            # Done here, but not recorded: the kept checkpoint holds the final state, so the
            # next run (any machine) reports it from there and records it, without redoing it.
            outcome = ItemOutcome(
                ItemStatus.INTERRUPTED, error=str(team.lost(exc)), backend_lost=True, usage=outcome.usage
            )
            invalid_db = False
    if (outcome.status.succeeded or invalid_db) and not outcome.backend_lost:
        try:
            store.delete()
        except Exception as exc:  # the final state stays in the backend: reported, never redone
            if team is None or not is_connection_lost(exc):
                raise
    if outcome.status.succeeded:
        invalid_inputs.forget(job)  # a forced run passed: the old verdict no longer holds
    _report(outcome, job, events, console, time.monotonic() - started)
    return outcome


def _progress(usage: UsageTotals, event: Event) -> None:
    """The events the live panel shows, as progress notes to the coordinator (in a worker)."""
    fields = event.fields
    if event.type is EventType.NODE_START:
        round_ = fields.get("round", fields.get("rounds_done"))
        progress_note.report(progress_note.ProgressNote(node=str(fields.get("node")), round=round_))
    elif event.type is EventType.LLM_CALL:
        tokens = sum(e["input_tokens"] + e["output_tokens"] for e in usage.by_model.values())
        key = fields.get("key_name")
        progress_note.report(
            progress_note.ProgressNote(key=key if isinstance(key, str) else None, tokens=tokens)
        )


def _rounds_so_far(graph: CompiledStateGraph[Any, Any, Any, Any] | None, config: Any) -> int:
    """Review rounds completed before an interruption, as the last checkpoint holds them."""
    if graph is None:
        return 0
    try:
        rounds = graph.get_state(config).values.get("rounds", 0)
    except Exception:
        return 0
    return rounds if isinstance(rounds, int) and not isinstance(rounds, bool) else 0


def _report(
    outcome: ItemOutcome,
    job: ItemJob,
    events: EventBus,
    console: Console,
    duration: float,
) -> None:
    fields: dict[str, Any] = {"duration_s": round(duration, 3), "rounds": outcome.rounds}
    if outcome.status.succeeded:
        events.emit(
            EventType.WORKFLOW_COMPLETE,
            status=outcome.status.value,
            output=outcome.output,
            **fields,
        )
        label = "APPROVED" if outcome.status is ItemStatus.APPROVED else "NEEDS REVISION"
        console.line(f"{label} after {outcome.rounds} review round(s): {outcome.output}")
    elif outcome.status is ItemStatus.INTERRUPTED:
        events.emit(EventType.WORKFLOW_INTERRUPTED, **fields)
        where = "in the backend" if outcome.backend_lost or job.backend_url else f"at {job.db_path}"
        console.line(f"INTERRUPTED: checkpoint kept {where}; run the same command to resume")
    elif outcome.status is ItemStatus.CREDENTIAL:
        events.emit(
            EventType.WORKFLOW_RATE_LIMITED,
            problem=outcome.credential_problem,
            provider=outcome.provider,
            key_name=outcome.key_name,
            retry_after=outcome.retry_after,
            **fields,
        )
        console.line(
            f"PAUSED: key {outcome.key_name} {outcome.credential_problem}: {outcome.error}; checkpoint kept"
        )
    else:
        events.emit(EventType.WORKFLOW_FAILED, error=outcome.error, **fields)
        console.line(f"FAILED: {outcome.error}")

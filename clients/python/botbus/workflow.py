"""A workflow executor: runs a workflow's steps as its run's lease holder.

It reports every step as the protocol asks (docs/PROTOCOL.md, "Workflows"):
``step.start``, the step's handler, ``step.complete`` with its output (or
``step.fail`` and another attempt), ``run.checkpoint`` with the outputs so
far, and ``run.complete``. Meanwhile it holds the lease with heartbeats (a
:class:`~botbus.lease.LeaseKeeper` thread, so a handler may run longer than
the lease), stops at an approval gate until the run's feed shows the step
approved, and cancels the run when another bot asks to.

Keys of a definition's step it understands, beside ``id`` and
``depends_on``: ``"approval": true`` makes the step a gate
(``step.wait_approval``; its output is ``{"approved_by": BOT}``),
``"max_attempts": N`` (default 1) retries a step whose handler raises, and
``"input"`` is recorded as each attempt's input.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .client import Client
from .errors import BotbusError, LeaseLost, ReplyError
from .feed import FeedSocket
from .lease import LeaseKeeper
from .wire import run_topic

StepHandler = Callable[["StepContext"], Any]
"""Does a step's work; returns its output (a JSON document) or raises to
fail the attempt."""

MIN_HEARTBEAT = 0.01
MAX_HEARTBEAT = 10.0

RUN_ENDED = ("run.crashed", "run.cancelled", "run.failed", "run.paused", "run.completed")
"""Run events after which this executor no longer holds the lease."""


@dataclass(frozen=True)
class StepContext:
    """What a step handler is given.

    ``cancel_requested`` is set when another bot asks to cancel the run while
    the handler runs; a long handler may watch it and return early (the run
    is then cancelled after the step is recorded).
    """

    run_id: str
    step_id: str
    attempt: int
    step: Mapping[str, Any]
    outputs: Mapping[str, Any]
    cancel_requested: threading.Event


@dataclass(frozen=True)
class RunResult:
    """How a run ended for this executor: ``status`` is ``"completed"``,
    ``"failed"``, ``"cancelled"``, or ``"paused"`` (an approval did not come
    within the approval timeout; :meth:`WorkflowExecutor.resume` goes on)."""

    run_id: str
    status: str
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class _Stopped(Exception):
    """The run ended before its last step; carries how."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(result.status)
        self.result = result


def steps_in_order(definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The definition's steps in dependency order (Kahn's algorithm, ties
    broken by definition order, so every run takes the same order)."""
    steps = definition.get("steps")
    if not isinstance(steps, list) or not all(isinstance(s, Mapping) and isinstance(s.get("id"), str) for s in steps):
        raise BotbusError("the definition needs a 'steps' array of maps with a string 'id'")
    ordered: list[Mapping[str, Any]] = []
    done: set[str] = set()
    while len(ordered) < len(steps):
        ready = next(
            (s for s in steps if s["id"] not in done and all(d in done for d in s.get("depends_on", []))), None
        )
        if ready is None:
            raise BotbusError("the steps' depends_on form a cycle or name an unknown step")
        done.add(ready["id"])
        ordered.append(ready)
    return ordered


class WorkflowExecutor:
    """Executes runs of workflows as ``client``'s bot (which must have said
    ``hello``).

    Args:
        client: the bot's connection; used from the calling thread only.
        handlers: step id -> handler; a step without one outputs None.
        heartbeat_interval: seconds between heartbeats (None: a third of
            the lease the daemon reports).
        approval_timeout: seconds to wait at an approval gate before pausing
            the run.
    """

    def __init__(
        self,
        client: Client,
        handlers: Mapping[str, StepHandler] | None = None,
        *,
        heartbeat_interval: float | None = None,
        approval_timeout: float = 60.0,
    ) -> None:
        if client.bot is None:
            raise BotbusError("a workflow executor needs hello(bot) first: the lease is the bot's")
        self._client = client
        self._handlers = dict(handlers or {})
        self._heartbeat_interval = heartbeat_interval
        self._approval_timeout = approval_timeout
        self.heartbeats = 0
        """Heartbeats the daemon accepted during the last run executed."""

    def put(self, definition: Mapping[str, Any], *, replace: bool = True) -> str:
        """Stores a global workflow definition (``workflow.put``; with
        ``replace``, a different one stored under the same name is replaced).
        Returns its workflow id."""
        return str(self._client.call("workflow.put", definition=definition, replace=replace or None)["workflow_id"])

    def start(
        self,
        workflow_id: str,
        *,
        run_id: str | None = None,
        context: Any = None,
        trigger_type: str = "python-executor",
        trigger_payload: Any = None,
    ) -> RunResult:
        """Starts a run (holding its lease) and executes it to its end."""
        # Read before the start: a run started holds a lease that only this executor renews.
        definition = self._client.call("workflow.get", workflow_id=workflow_id)["workflow"]["definition"]
        reply = self._client.call(
            "run.start",
            workflow_id=workflow_id,
            run_id=run_id,
            context=context,
            trigger_type=trigger_type,
            trigger_payload=trigger_payload,
        )
        run_id = str(reply["run_id"])
        if reply.get("duplicate"):
            raise BotbusError(f"run {run_id} exists already ({reply.get('status')}); resume it instead")
        feed = FeedSocket(self._client, [run_topic(run_id)])
        outputs = dict(context) if isinstance(context, Mapping) else {}
        return self._execute(run_id, definition, int(reply["lease_expires_at"]), feed, outputs, {})

    def resume(self, run_id: str) -> RunResult:
        """Takes over a paused, pending or crashed run and executes what is
        left: steps completed (or skipped, or approved) are not run again, an
        attempt left running is failed and retried, a gate still waiting is
        waited on."""
        # The feed first, so an approval given while this reads the run is seen.
        feed = FeedSocket(self._client, [run_topic(run_id)])
        try:
            run = self._client.call("run.get", run_id=run_id)["run"]
            definition = self._client.call("workflow.get", workflow_id=run["workflow_id"])["workflow"]["definition"]
            reply = self._client.call("run.resume", run_id=run_id)
            outputs = dict(run["context"]) if isinstance(run.get("context"), Mapping) else {}
            latest = self._latest_attempts(run_id)
        except BaseException:
            feed.close()
            raise
        for step_id, attempt in latest.items():
            if attempt["status"] == "completed":
                approved_by = attempt.get("approved_by")
                outputs[step_id] = {"approved_by": approved_by} if approved_by else attempt.get("output")
        return self._execute(run_id, definition, int(reply["lease_expires_at"]), feed, outputs, latest)

    def _latest_attempts(self, run_id: str) -> dict[str, Mapping[str, Any]]:
        latest: dict[str, Mapping[str, Any]] = {}
        after = None
        while True:  # run.steps comes in pages (PROTOCOL.md, "Paging")
            page = self._client.call("run.steps", run_id=run_id, after=after)
            for attempt in page["steps"]:
                latest[attempt["step_id"]] = attempt
            if not page["more"] or not page["steps"]:
                return latest
            after = page["steps"][-1]["start_seq"]

    def _execute(
        self,
        run_id: str,
        definition: Mapping[str, Any],
        lease_expires_at: int,
        feed: FeedSocket,
        outputs: dict[str, Any],
        latest: Mapping[str, Mapping[str, Any]],
    ) -> RunResult:
        self.heartbeats = 0
        keeper: LeaseKeeper | None = None
        run: _Run | None = None
        try:
            steps = steps_in_order(definition)
            keeper = LeaseKeeper(self._client, run_id, self._interval(lease_expires_at))
            run = _Run(self._client, run_id, feed, keeper, outputs, self._handlers, self._approval_timeout)
            for step in steps:
                previous = latest.get(step["id"])
                if previous is not None and previous["status"] in ("completed", "skipped"):
                    continue
                run.execute(step, previous)
            self._client.call("run.complete", run_id=run_id, context=outputs)
            return RunResult(run_id, "completed", outputs)
        except _Stopped as stopped:
            return stopped.result
        finally:
            if keeper is not None:
                keeper.stop()
                self.heartbeats = keeper.beats + (run.beats if run is not None else 0)
            feed.close()

    def _interval(self, lease_expires_at: int) -> float:
        if self._heartbeat_interval is not None:
            return self._heartbeat_interval
        # A third of what is left of the lease by the daemon's clock; on one
        # machine (or synced clocks) that is a third of the lease.
        left = (lease_expires_at - time.time() * 1_000_000) / 1_000_000
        return min(MAX_HEARTBEAT, max(MIN_HEARTBEAT, left / 3))


class _Run:
    """One run being executed: the steps, the gates and the cancel checks."""

    def __init__(
        self,
        client: Client,
        run_id: str,
        feed: FeedSocket,
        keeper: LeaseKeeper,
        outputs: dict[str, Any],
        handlers: Mapping[str, StepHandler],
        approval_timeout: float,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.feed = feed
        self.keeper = keeper
        self.outputs = outputs
        self.handlers = handlers
        self.approval_timeout = approval_timeout
        self.beats = 0  # heartbeats sent from this thread, between steps

    def execute(self, step: Mapping[str, Any], previous: Mapping[str, Any] | None) -> None:
        step_id = str(step["id"])
        self.heartbeat()
        attempt = 1
        if previous is not None:
            attempt = int(previous["attempt"])
            if previous["status"] == "waiting_approval":
                self.record(step_id, {"approved_by": self.wait_for_approval(step_id)})
                return
            if previous["status"] == "running":
                # Its executor stopped mid-step: close that attempt, then retry.
                self.fail_step(step_id, "interrupted: the executor running it stopped", will_retry=True)
            attempt += 1
        max_attempts = int(step.get("max_attempts", 1))
        while True:
            self.client.call(
                "step.start", run_id=self.run_id, step_id=step_id, attempt=attempt, input=step.get("input")
            )
            if step.get("approval") is True:
                self.client.call("step.wait_approval", run_id=self.run_id, step_id=step_id)
                self.record(step_id, {"approved_by": self.wait_for_approval(step_id)})
                return
            error = self.perform(step, attempt)
            if error is None:
                self.stop_if_cancel_requested()
                return
            will_retry = attempt < max_attempts and not self.keeper.cancel_requested.is_set()
            self.fail_step(step_id, error, will_retry)
            self.stop_if_cancel_requested()
            if not will_retry:
                self.client.call("run.fail", run_id=self.run_id, error=f"step {step_id}: {error}")
                raise _Stopped(RunResult(self.run_id, "failed", self.outputs, f"step {step_id}: {error}"))
            self.heartbeat()
            attempt += 1

    def perform(self, step: Mapping[str, Any], attempt: int) -> str | None:
        """Runs the step's handler and records its output; returns the error
        of a failed attempt."""
        step_id = str(step["id"])
        handler = self.handlers.get(step_id)
        context = StepContext(self.run_id, step_id, attempt, step, dict(self.outputs), self.keeper.cancel_requested)
        try:
            output = handler(context) if handler is not None else None
        except Exception as e:  # the handler's failure is the attempt's, reported to the daemon
            return f"{type(e).__name__}: {e}"
        self.check_lease()  # a handler may outlast a lease the keeper could not renew
        self.client.call("step.complete", run_id=self.run_id, step_id=step_id, output=output)
        self.record(step_id, output)
        return None

    def fail_step(self, step_id: str, error: str, will_retry: bool) -> None:
        self.client.call("step.fail", run_id=self.run_id, step_id=step_id, error=error, will_retry=will_retry)

    def record(self, step_id: str, output: Any) -> None:
        """Keeps the step's output in the run's context, so a resumed run has it."""
        self.outputs[step_id] = output
        self.client.call("run.checkpoint", run_id=self.run_id, context=self.outputs)

    def heartbeat(self) -> None:
        """Renews the lease now (between steps); cancels on request."""
        self.check_lease()
        try:
            reply = self.client.call("run.heartbeat", run_id=self.run_id)
        except ReplyError as e:
            raise LeaseLost(f"run {self.run_id}: {e}") from e
        self.beats += 1
        if reply.get("cancel_requested"):
            self.keeper.cancel_requested.set()
        self.stop_if_cancel_requested()

    def check_lease(self) -> None:
        if self.keeper.lost.is_set():
            raise LeaseLost(f"run {self.run_id}: the lease was lost: {self.keeper.error}")

    def stop_if_cancel_requested(self) -> None:
        if self.keeper.cancel_requested.is_set():
            # This bot holds the lease: its run.cancel cancels the run at once.
            self.client.call("run.cancel", run_id=self.run_id)
            raise _Stopped(RunResult(self.run_id, "cancelled", self.outputs))

    def wait_for_approval(self, step_id: str) -> str:
        """Follows the run's feed until the step is approved; returns who
        approved it. Pauses the run when the approval timeout passes."""
        deadline = time.monotonic() + self.approval_timeout
        while True:
            self.check_lease()
            self.stop_if_cancel_requested()
            left = deadline - time.monotonic()
            if left <= 0:
                # Paused runs hold no lease: stop renewing it before pausing.
                self.keeper.stop()
                self.client.call("run.pause", run_id=self.run_id)
                why = f"step {step_id} was not approved in time"
                raise _Stopped(RunResult(self.run_id, "paused", self.outputs, why))
            received = self.feed.receive(min(left, self.keeper.interval))
            if received is None:
                continue
            event = received[1]
            kind = event.get("event")
            data = event.get("data")
            if not isinstance(data, Mapping):
                data = {}
            if kind == "step.approved" and data.get("step_id") == step_id:
                return str(data.get("approved_by") or event.get("by"))
            if kind == "run.cancel_requested":
                self.keeper.cancel_requested.set()
            elif kind in RUN_ENDED:
                raise LeaseLost(f"run {self.run_id}: {kind} by {event.get('by')} while waiting for approval")

"""The workflow executor helper: the lease held by heartbeats across several
lease periods, approval gates, cancels, retries and resuming, against the
real botbusd."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from botbus import Client, RunResult, WorkflowExecutor
from botbus.feed import FeedSocket
from botbus.wire import run_topic

LEASE_MS = 1000  # short, for the test; heartbeats come every third of it


class Executing:
    """An executor running one run on a thread of its own (its client with it)."""

    def __init__(self, start: Callable[[], RunResult]) -> None:
        self.result: RunResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(start,))
        self._thread.start()

    def _run(self, start: Callable[[], RunResult]) -> None:
        try:
            self.result = start()
        except BaseException as e:  # reported by finish()
            self.error = e

    def finish(self, within: float = 20.0) -> RunResult:
        self._thread.join(within)
        assert not self._thread.is_alive(), f"the executor did not finish within {within} s"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def wait_for_event(feed: FeedSocket, kind: str, within: float = 10.0) -> dict:
    """The first event of ``kind`` on the run's feed topic."""
    deadline = time.monotonic() + within
    while (event := feed.receive(max(0.0, deadline - time.monotonic()))) is not None:
        if event[1].get("event") == kind:
            return event[1]
    raise AssertionError(f"no {kind} event within {within} s")


def steps_of(client: Client, run_id: str) -> list[tuple[str, int, str]]:
    return [(s["step_id"], s["attempt"], s["status"]) for s in client.call("run.steps", run_id=run_id)["steps"]]


def test_the_lease_is_held_by_heartbeats_across_several_lease_periods(start_daemon, connect):
    daemon = start_daemon("--lease-ms", str(LEASE_MS))
    executor_bot = connect(daemon, "executor")
    other = connect(daemon, "other")
    executor = WorkflowExecutor(
        executor_bot,
        {
            # A step that works for over three lease periods.
            "slow": lambda ctx: ctx.cancel_requested.wait(3.2 * LEASE_MS / 1000) or 20,
            "sum": lambda ctx: ctx.outputs["slow"] + 1,
        },
    )
    workflow_id = executor.put({"name": "long", "steps": [{"id": "slow"}, {"id": "sum", "depends_on": ["slow"]}]})
    # The control: a run whose holder sends no heartbeat crashes after one lease.
    silent_feed = FeedSocket(other, [run_topic("silent")])
    other.call("run.start", workflow_id=workflow_id, run_id="silent")

    result = executor.start(workflow_id, run_id="held")

    assert result == RunResult("held", "completed", {"slow": 20, "sum": 21})
    assert executor.heartbeats >= 3
    run = other.call("run.get", run_id="held")["run"]
    assert (run["status"], run["context"]) == ("completed", {"slow": 20, "sum": 21})
    assert wait_for_event(silent_feed, "run.crashed")["by"] == "botbusd"
    silent_feed.close()
    assert [r["id"] for r in other.call("run.crashed")["runs"]] == ["silent"]


GATED = {
    "name": "deploy",
    "steps": [
        {"id": "build"},
        {"id": "review", "approval": True, "depends_on": ["build"]},
        {"id": "ship", "depends_on": ["review"]},
    ],
}


def test_the_executor_waits_at_an_approval_gate_until_it_is_approved(daemon, connect):
    handlers = {"build": lambda ctx: "a.tar", "ship": lambda ctx: "shipped"}
    executor = WorkflowExecutor(connect(daemon, "executor"), handlers)
    workflow_id = executor.put(GATED)
    approver = connect(daemon, "approver")
    feed = FeedSocket(approver, [run_topic("deploy-1")])

    running = Executing(lambda: executor.start(workflow_id, run_id="deploy-1"))
    wait_for_event(feed, "step.waiting_approval")
    assert approver.call("run.get", run_id="deploy-1")["run"]["status"] == "running"
    approver.call("step.approve", run_id="deploy-1", step_id="review")
    result = running.finish()
    feed.close()

    assert result.status == "completed"
    assert result.outputs == {"build": "a.tar", "review": {"approved_by": "approver"}, "ship": "shipped"}
    assert steps_of(approver, "deploy-1") == [
        ("build", 1, "completed"),
        ("review", 1, "completed"),
        ("ship", 1, "completed"),
    ]


def test_the_executor_cancels_the_run_when_asked_at_an_approval_gate(daemon, connect):
    executor = WorkflowExecutor(connect(daemon, "executor"))
    workflow_id = executor.put(GATED)
    operator = connect(daemon, "operator")
    feed = FeedSocket(operator, [run_topic("deploy-2")])

    running = Executing(lambda: executor.start(workflow_id, run_id="deploy-2"))
    wait_for_event(feed, "step.waiting_approval")
    requested = operator.call("run.cancel", run_id="deploy-2")
    result = running.finish()
    feed.close()

    assert requested["cancel_requested"] and requested["status"] == "running"
    assert result.status == "cancelled"
    assert operator.call("run.get", run_id="deploy-2")["run"]["status"] == "cancelled"
    assert ("ship", 1, "completed") not in steps_of(operator, "deploy-2")


def test_a_long_step_learns_of_a_cancel_from_the_heartbeats(start_daemon, connect):
    daemon = start_daemon("--lease-ms", str(LEASE_MS))
    seen_cancel = threading.Event()

    def work_until_cancelled(ctx) -> str:
        if ctx.cancel_requested.wait(20):
            seen_cancel.set()
        return "stopped early"

    executor = WorkflowExecutor(connect(daemon, "executor"), {"work": work_until_cancelled})
    workflow_id = executor.put({"name": "endless", "steps": [{"id": "work"}, {"id": "after", "depends_on": ["work"]}]})
    operator = connect(daemon, "operator")
    feed = FeedSocket(operator, [run_topic("endless-1")])

    running = Executing(lambda: executor.start(workflow_id, run_id="endless-1"))
    wait_for_event(feed, "step.started")
    operator.call("run.cancel", run_id="endless-1")
    result = running.finish()
    feed.close()

    assert seen_cancel.is_set()
    assert result.status == "cancelled"
    assert steps_of(operator, "endless-1") == [("work", 1, "completed")]
    assert operator.call("run.get", run_id="endless-1")["run"]["status"] == "cancelled"


def test_a_failing_step_is_retried_then_fails_the_run(daemon, connect):
    attempts: list[int] = []

    def flaky(ctx) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError(f"broken on attempt {ctx.attempt}")

    client = connect(daemon, "executor")
    executor = WorkflowExecutor(client, {"flaky": flaky})
    workflow_id = executor.put({"name": "flaky", "steps": [{"id": "flaky", "max_attempts": 2}]})

    result = executor.start(workflow_id, run_id="flaky-1")

    assert attempts == [1, 2]
    assert (result.status, result.error) == ("failed", "step flaky: RuntimeError: broken on attempt 2")
    assert steps_of(client, "flaky-1") == [("flaky", 1, "failed"), ("flaky", 2, "failed")]
    run = client.call("run.get", run_id="flaky-1")["run"]
    assert (run["status"], run["error"]) == ("failed", result.error)


def test_a_run_paused_at_its_gate_is_resumed_past_the_approval(daemon, connect):
    built: list[int] = []
    handlers = {"build": lambda ctx: built.append(ctx.attempt) or "a.tar", "ship": lambda ctx: ctx.outputs["build"]}
    executor = WorkflowExecutor(connect(daemon, "executor"), handlers, approval_timeout=0.2)
    workflow_id = executor.put(GATED)
    approver = connect(daemon, "approver")

    paused = executor.start(workflow_id, run_id="deploy-3")
    approver.call("step.approve", run_id="deploy-3", step_id="review")
    resumed = executor.resume("deploy-3")

    assert paused.status == "paused"
    assert approver.call("run.get", run_id="deploy-3")["run"]["status"] == "completed"
    assert resumed.status == "completed"
    assert resumed.outputs == {"build": "a.tar", "review": {"approved_by": "approver"}, "ship": "a.tar"}
    assert built == [1]  # the resumed run did not build again


def test_an_executor_needs_an_identity(daemon, connect):
    with pytest.raises(Exception, match="hello"):
        WorkflowExecutor(connect(daemon))

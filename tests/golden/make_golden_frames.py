#!/usr/bin/python3
"""Writes tests/golden_frames.hpp: one golden request frame per use, packed
by the reference msgpack implementation (python3-msgpack), never by
bus/protocol/codec.

The frames spell every op and field exactly as docs/PROTOCOL.md does, with
every optional field of every op present in at least one frame. The C++
tests (golden_frames_test.cpp, golden_replies_test.cpp) read the checked-in
header, so building and running them needs no Python: run this script only
after changing the list below, and check in what it writes.

    /usr/bin/python3 tests/golden/make_golden_frames.py > tests/golden_frames.hpp
"""
import json
import msgpack

DEPLOY = {
    "name": "deploy",
    "id": "wf-deploy",
    "steps": [
        {"id": "build", "name": "Build"},
        {"id": "test", "depends_on": ["build"]},
        {"id": "ship", "depends_on": ["test"]},
        {"id": "gate"},
        {"id": "docs"},
    ],
}
MINE = {"name": "mine", "id": "wf-mine", "steps": [{"id": "a"}], "note": "kept"}

# (name, request map). Frame names are "<op>.<variant>"; the request id is
# an integer unless a frame shows otherwise.
FRAMES = [
    # ---- session
    ("ping", {"op": "ping"}),
    ("hello.alice", {"op": "hello", "id": "a-2", "v": 1, "bot": "alice"}),
    ("hello.bob", {"op": "hello", "bot": "bob", "pushes": True}),
    ("hello.carol", {"op": "hello", "bot": "carol", "pushes": False}),
    ("stats", {"op": "stats"}),
    ("feed.sync", {"op": "feed.sync", "token": "golden-1"}),
    # ---- channels and membership
    ("channel.create.full", {"op": "channel.create", "name": "lobby", "description": "front room"}),
    ("channel.create.minimal", {"op": "channel.create", "name": "attic"}),
    ("channel.create.no_name", {"op": "channel.create", "description": "nameless"}),
    ("channel.retention.full", {"op": "channel.retention", "name": "lobby", "max_age_ms": 86400000,
                                "max_messages": 500}),
    ("channel.retention.minimal", {"op": "channel.retention", "name": "attic"}),
    ("channel.delete", {"op": "channel.delete", "name": "attic"}),
    ("channel.list", {"op": "channel.list"}),
    ("subscribe.minimal", {"op": "subscribe", "channel": "lobby"}),
    ("subscriptions.full", {"op": "subscriptions", "bot": "alice"}),
    ("subscriptions.nil_bot", {"op": "subscriptions", "bot": None}),
    ("subscribers.lobby", {"op": "subscribers", "channel": "lobby"}),
    ("subscribers.attic", {"op": "subscribers", "channel": "attic"}),
    ("unsubscribe.full", {"op": "unsubscribe", "channel": "lobby", "bot": "alice"}),
    ("unsubscribe.minimal", {"op": "unsubscribe", "channel": "lobby"}),
    ("unknown_op", {"op": "channel.rename", "name": "lobby"}),
    # ---- messages
    ("publish.greet", {"op": "publish", "channel": "lobby", "body": "hi all", "idempotency_key": "greet-1"}),
    ("publish.full", {"op": "publish", "channel": "lobby", "body": {"n": 1, "tags": ["a", "b"]}, "type": "note",
                      "idempotency_key": "greet-2", "reply_to": 2}),
    ("send.question", {"op": "send", "to": "bob", "body": {"q": "lunch?"}, "type": "question"}),
    ("send.full", {"op": "send", "to": "bob", "body": "yes", "type": "answer", "idempotency_key": "ans-1",
                   "reply_to": 4, "ttl_ms": 60000}),
    ("history.channel", {"op": "history", "channel": "lobby"}),
    ("history.peer", {"op": "history", "peer": "alice", "bot": "bob", "after": 1, "before": 100, "limit": 1,
                      "order": "desc"}),
    ("history.inbox", {"op": "history", "inbox": True}),
    ("mailbox.minimal", {"op": "mailbox"}),
    ("ack.seqs", {"op": "ack", "seqs": [4]}),
    ("ack.upto", {"op": "ack", "upto": 5}),
    # ---- delivered subscriptions
    ("publish.job1", {"op": "publish", "channel": "jobs", "body": "job one"}),
    ("publish.job2", {"op": "publish", "channel": "jobs", "body": {"n": 2}}),
    ("subscribe.full", {"op": "subscribe", "channel": "jobs", "bot": "bob", "durable": True, "deliver": "push",
                        "from_seq": 1, "credit": 10}),
    ("subscribe.pull", {"op": "subscribe", "channel": "jobs", "durable": True, "deliver": "pull", "last": 1}),
    ("subscribe.from_time", {"op": "subscribe", "channel": "news", "from_time": 1}),
    ("mailbox.full", {"op": "mailbox", "bot": "bob", "channel": "jobs"}),
    ("consumers.full", {"op": "consumers", "bot": "bob", "channel": "jobs"}),
    ("consumers.minimal", {"op": "consumers"}),
    ("ack.channel", {"op": "ack", "upto": 2, "seqs": [3], "channel": "jobs"}),
    ("fetch.full", {"op": "fetch", "channel": "jobs", "max": 10, "wait_ms": 0}),
    ("fetch.minimal", {"op": "fetch", "channel": "jobs"}),
    # ---- dead letters
    ("send.doomed", {"op": "send", "to": "bob", "body": "never acked"}),
    ("dlq.list.full", {"op": "dlq.list", "bot": "bob", "after": 0, "limit": 10}),
    ("dlq.list.minimal", {"op": "dlq.list"}),
    ("dlq.replay.full", {"op": "dlq.replay", "seq": 1, "bot": "bob"}),
    ("dlq.replay.minimal", {"op": "dlq.replay", "seq": 1}),
    # ---- workflows
    ("workflow.put.minimal", {"op": "workflow.put", "definition": DEPLOY}),
    ("workflow.put.full", {"op": "workflow.put", "definition": MINE, "owner_type": "bot", "owner_bot": "alice",
                           "replace": True}),
    ("workflow.get.id", {"op": "workflow.get", "workflow_id": "wf-deploy"}),
    ("workflow.get.name", {"op": "workflow.get", "name": "mine", "owner_type": "bot", "owner_bot": "alice"}),
    ("workflow.list.full", {"op": "workflow.list", "owner_type": "bot", "owner_bot": "alice",
                            "include_archived": True}),
    ("workflow.list.minimal", {"op": "workflow.list"}),
    ("workflow.delete.full", {"op": "workflow.delete", "workflow_id": "wf-mine", "archive": True}),
    ("workflow.delete.minimal", {"op": "workflow.delete", "workflow_id": "wf-deploy"}),
    ("run.start.full", {"op": "run.start", "workflow_id": "wf-deploy", "run_id": "deploy-7", "status": "running",
                        "trigger_type": "cron", "trigger_payload": {"at": "noon"}, "context": {"env": "prod"},
                        "concurrency_key": "prod"}),
    ("run.start.minimal", {"op": "run.start", "workflow_id": "wf-deploy"}),
    ("run.start.pending8", {"op": "run.start", "workflow_id": "wf-deploy", "run_id": "deploy-8",
                            "status": "pending"}),
    ("run.start.pending9", {"op": "run.start", "workflow_id": "wf-deploy", "run_id": "deploy-9",
                            "status": "pending"}),
    ("run.heartbeat", {"op": "run.heartbeat", "run_id": "deploy-7"}),
    ("run.pause", {"op": "run.pause", "run_id": "deploy-7"}),
    ("run.resume", {"op": "run.resume", "run_id": "deploy-7"}),
    ("run.checkpoint", {"op": "run.checkpoint", "run_id": "deploy-7", "context": {"stage": "after-gate"}}),
    ("run.complete.full", {"op": "run.complete", "run_id": "deploy-7", "context": {"done": True}}),
    ("run.complete.minimal", {"op": "run.complete", "run_id": "deploy-7"}),
    ("run.fail", {"op": "run.fail", "run_id": "deploy-8", "error": "no capacity"}),
    ("run.cancel", {"op": "run.cancel", "run_id": "deploy-9"}),
    ("run.get", {"op": "run.get", "run_id": "deploy-7"}),
    ("run.list.full", {"op": "run.list", "workflow_id": "wf-deploy", "status": "running", "limit": 10}),
    ("run.list.minimal", {"op": "run.list"}),
    ("run.steps", {"op": "run.steps", "run_id": "deploy-7"}),
    ("run.completed_steps", {"op": "run.completed_steps", "run_id": "deploy-7"}),
    ("run.crashed", {"op": "run.crashed"}),
    ("step.start.full", {"op": "step.start", "run_id": "deploy-7", "step_id": "build", "step_name": "Build it",
                         "attempt": 1, "input": {"ref": "main"}}),
    ("step.start.minimal", {"op": "step.start", "run_id": "deploy-7", "step_id": "build"}),
    ("step.start.test", {"op": "step.start", "run_id": "deploy-7", "step_id": "test"}),
    ("step.start.ship", {"op": "step.start", "run_id": "deploy-7", "step_id": "ship"}),
    ("step.start.gate", {"op": "step.start", "run_id": "deploy-7", "step_id": "gate"}),
    ("step.fail.full", {"op": "step.fail", "run_id": "deploy-7", "step_id": "build", "error": "exit 1",
                        "will_retry": True}),
    ("step.fail.minimal", {"op": "step.fail", "run_id": "deploy-7", "step_id": "test", "error": "flaky"}),
    ("step.complete.full", {"op": "step.complete", "run_id": "deploy-7", "step_id": "build",
                            "output": {"artifact": "a.tar"}}),
    ("step.complete.minimal", {"op": "step.complete", "run_id": "deploy-7", "step_id": "ship"}),
    ("step.skip.full", {"op": "step.skip", "run_id": "deploy-7", "step_id": "test", "reason": "not today"}),
    ("step.skip.minimal", {"op": "step.skip", "run_id": "deploy-7", "step_id": "docs"}),
    ("step.wait_approval", {"op": "step.wait_approval", "run_id": "deploy-7", "step_id": "gate"}),
    ("step.approve", {"op": "step.approve", "run_id": "deploy-7", "step_id": "gate"}),
    # ---- paging (PROTOCOL.md, "Paging"): each list's limit and cursor
    ("channel.list.page", {"op": "channel.list", "after": "attic", "limit": 1}),
    ("subscriptions.page", {"op": "subscriptions", "bot": "alice", "after": "attic", "limit": 1}),
    ("subscribers.page", {"op": "subscribers", "channel": "lobby", "after": "alice", "limit": 1}),
    ("workflow.list.page", {"op": "workflow.list", "after": "mine", "after_owner_bot": "alice", "limit": 1}),
    ("run.list.page", {"op": "run.list", "before": 1, "limit": 1}),
    ("run.steps.page", {"op": "run.steps", "run_id": "deploy-7", "after": 1, "limit": 1}),
    ("run.completed_steps.page", {"op": "run.completed_steps", "run_id": "deploy-7", "after": 1, "limit": 1}),
    ("run.crashed.page", {"op": "run.crashed", "before": 1, "limit": 1}),
    # ---- consumers' cursor
    ("consumers.paged", {"op": "consumers", "channel": "jobs", "after": "jobs", "after_bot": "bob", "limit": 10}),
    # ---- permissions (admins only)
    ("acl.grant", {"op": "acl.grant", "bot": "ops.*", "permission": "read", "channel": "alerts"}),
    ("acl.revoke", {"op": "acl.revoke", "bot": "ops.*", "permission": "read", "channel": "alerts"}),
    ("acl.list", {"op": "acl.list"}),
    ("acl.list.page", {"op": "acl.list", "after_bot": "alice", "after_permission": "read", "after_channel": "a*",
                       "limit": 10}),
    # ---- backups and replicas
    ("backup", {"op": "backup", "name": "nightly.db"}),
    ("hello.dave", {"op": "hello", "bot": "dave", "fan_out": True, "credit": 50}),
    ("bye", {"op": "bye"}),
]


def with_id(index, request):
    out = {"op": request["op"]}
    out["id"] = request.get("id", index + 1)
    out.update((k, v) for k, v in request.items() if k not in ("op", "id"))
    return out


def main():
    names = [name for name, _ in FRAMES]
    assert len(names) == len(set(names)), "frame names must be unique"
    print("// GENERATED by tests/golden/make_golden_frames.py from docs/PROTOCOL.md; do not edit.")
    print("// Golden request frames, packed by python3-msgpack (not by bus/protocol/codec).")
    print("#pragma once")
    print()
    print("#include <string_view>")
    print()
    print("namespace botbus::testing {")
    print()
    print("struct GoldenFrame {")
    print("    std::string_view name;")
    print("    std::string_view json;  // what the frame holds, for people")
    print("    std::string_view hex;   // the msgpack bytes")
    print("};")
    print()
    print("inline constexpr GoldenFrame k_golden_frames[] = {")
    for index, (name, request) in enumerate(FRAMES):
        request = with_id(index, request)
        packed = msgpack.packb(request, use_bin_type=True)
        text = json.dumps(request, separators=(",", ":")).replace("\\", "\\\\").replace('"', '\\"')
        print(f'    {{"{name}",')
        print(f'     "{text}",')
        hexed = packed.hex()
        chunks = [hexed[i:i + 96] for i in range(0, len(hexed), 96)]
        print("     " + "\n     ".join(f'"{c}"' for c in chunks) + "},")
    print("};")
    print()
    print("}  // namespace botbus::testing")


if __name__ == "__main__":
    main()

"""Controllers on 3 members: they run on the Raft leader only, and when the
leader is killed (kill -9) in the middle of a reassignment the new leader
finishes it with no double action — checked from the watch history of the
segment keys."""

import json
import os
import signal
import threading
import time
from contextlib import contextmanager

import pytest
from etcd3 import etcdrpc

from harness import IS_REFERENCE_ETCD
from metanode import Node, get_json, wait_for

pytestmark = pytest.mark.skipif(IS_REFERENCE_ETCD, reason="metad's controllers")

SHARDS = 3000
SEGS = "/_meta/journal/segments/ns/"


def segments(etcd):
    return {meta.key.decode(): (json.loads(v), meta.version) for v, meta in etcd.get_prefix(SEGS)}


def via_of(etcd, cluster):
    return [m for m in cluster.members if etcd in m._clients][0]


@contextmanager
def throttled_to_kill(member, run_s=0.002, pause_s=0.008):
    """Run member's process a fifth of the time (SIGSTOP/SIGCONT) while
    inside, and leave it stopped for the caller to kill: its controllers'
    reassignment then lasts several times longer than this test takes to
    react, so the kill lands in its middle even on a loaded machine. Pauses
    stay far below the election timeout."""
    pid, stop = member.proc.pid, threading.Event()

    def duty():
        while not stop.is_set():
            os.kill(pid, signal.SIGSTOP)
            time.sleep(pause_s)
            os.kill(pid, signal.SIGCONT)
            time.sleep(run_s)

    t = threading.Thread(target=duty, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        os.kill(pid, signal.SIGSTOP)


def failover_with_leader_kill(cluster, etcd, nodes, victim, trigger):
    """Kill storage node victim and, as soon as the leader's controllers start
    acting on it, the leader. Returns how many segment changes the new
    leader made and how many there were to make."""
    leader = cluster.leader()
    if leader is via_of(etcd, cluster):
        # Our client's member must stay up: hand leadership to another one.
        other = [m for m in cluster.members if m is not leader and m.running()][0]
        target = cluster.status(other).header.member_id
        leader.maintenance().MoveLeader(etcdrpc.MoveLeaderRequest(targetID=target), timeout=10)
        leader = wait_for(lambda: cluster.leader() is other and other, 10, "leader moved")
    before = segments(etcd)
    start_rev = etcd.put("/_meta/marker", "start").header.revision + 1
    affected = {k for k, (s, _) in before.items() if victim in s["isr"]}
    if trigger == "event":
        # Kill the leader once its first change to a segment is seen.
        first, cancel_first = etcd.watch_prefix(SEGS, start_revision=start_rev)
        nodes[victim].stop()
        with throttled_to_kill(leader):
            next(iter(first))
        leader.kill()
        cancel_first()
    else:
        # Kill it as soon as its controllers log that they start (before their
        # first Txn): earlier than "event", for a fast build.
        nodes[victim].stop()
        wait_for(lambda: "journal: storage node %s gone" % victim in leader.log_text(), 10,
                 "the old leader's controllers reacting")
        leader.kill()
    new_leader = cluster.leader(deadline=20)
    assert new_leader is not leader

    def done():
        now = segments(etcd)
        return all(victim not in s["isr"] and s["leader"] != victim
                   for s, _ in now.values()) and now
    now = wait_for(done, 20, "every segment off %s" % victim)

    # Each affected segment changed exactly once, no other one changed: its
    # version went up by one (a repeated action would make it two) ...
    assert {k for k, (_, ver) in now.items() if ver != before[k][1]} == affected
    assert all(now[k][1] == before[k][1] + 1 for k in affected)
    # ... and the watch history since the kill says the same, event by event.
    end_rev = etcd.put("/_meta/marker", "end").header.revision
    events, cancel = etcd.watch_prefix("/_meta/", start_revision=start_rev)
    changes = {}
    for ev in events:
        key = ev.key.decode()
        if key == "/_meta/marker" and ev.mod_revision == end_rev:
            break
        if key.startswith(SEGS):
            changes[key] = changes.get(key, 0) + 1
    cancel()
    assert set(changes) == affected
    assert all(n == 1 for n in changes.values()), {k: n for k, n in changes.items() if n != 1}
    for k in affected:
        s0, s = before[k][0], now[k][0]
        survivors = [r for r in s0["isr"] if r != victim]
        if s0["leader"] == victim:
            assert s["leader"] == (survivors[0] if survivors else "")
        else:
            assert s["leader"] == s0["leader"]
        assert s["isr"] == survivors
    st, meta = get_json(etcd, "/_meta/status/nodes/storage/%s" % victim)
    assert st["state"] == "lost" and meta.version == 2
    log = new_leader.log_text()
    assert "controllers: starting on the leader" in log
    finished = [int(l.split("gone: ")[1].split()[0]) for l in log.splitlines()
                if "journal: storage node %s gone:" % victim in l]
    leader.killed = True
    leader.start()
    return (finished[0] if finished else 0), len(affected)


def test_leader_killed_mid_failover_no_double_action(cluster_factory):
    cluster = cluster_factory(3)
    leader = cluster.leader()
    via = cluster.followers(leader)[0]   # the client talks to a member that stays up
    etcd = via.client()
    nodes = {n.id: n for n in [Node(etcd, "storage", "s%d" % i, ttl=20).keep_alive()
                               for i in range(4)]}
    for i in range(SHARDS):
        etcd.put("/_meta/journal/requests/create/ns/c%d" % i, json.dumps({"replicas": 3}))
    wait_for(lambda: len(list(etcd.get_prefix(SEGS, keys_only=True))) == SHARDS, 60,
             "placement")
    # Only the leader's controllers acted.
    for m in cluster.members:
        assert ("controllers: starting on the leader" in m.log_text()) == (m is leader), m.name
    # The kill lands before, in the middle of or after the old leader's Txns
    # (several batches in flight), depending on the build's speed; try victims
    # and both triggers until it lands in the middle, with every attempt
    # checked for double actions.
    outcomes = []
    for victim, trigger in (("s1", "event"), ("s2", "log"), ("s3", "event")):
        new_did, total = failover_with_leader_kill(cluster, etcd, nodes, victim, trigger)
        outcomes.append((victim, new_did, total))
        if 0 < new_did < total:
            break
    print("outcomes (victim, changes by the new leader, affected):", outcomes)
    assert any(0 < d < t for _, d, t in outcomes), outcomes

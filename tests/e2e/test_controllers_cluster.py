"""Controllers on 3 members: they run on the Raft leader only, and when the
leader is killed (kill -9) in the middle of a reassignment the new leader
finishes it with no double action — checked from the watch history of the
segment keys."""

import json
import time

import pytest

from harness import IS_REFERENCE_ETCD
from metanode import Node, get_json, segment, wait_for

pytestmark = pytest.mark.skipif(IS_REFERENCE_ETCD, reason="metad's controllers")

SHARDS = 1200


def test_leader_killed_mid_failover_no_double_action(cluster_factory):
    cluster = cluster_factory(3)
    leader = cluster.leader()
    # The client talks to a member that stays up.
    via = cluster.followers(leader)[0]
    etcd = via.client()
    nodes = {n.id: n for n in [Node(etcd, "storage", "s%d" % i, ttl=20).keep_alive()
                               for i in range(4)]}
    for i in range(SHARDS):
        etcd.put("/_meta/journal/requests/create/ns/c%d" % i, json.dumps({"replicas": 3}))
    wait_for(lambda: len(list(etcd.get_prefix("/_meta/journal/segments/ns/",
                                              keys_only=True))) == SHARDS, 30, "placement")
    # Only the leader's controllers acted.
    for m in cluster.members:
        acted = "controllers: starting on the leader" in m.log_text()
        assert acted == (m is leader), m.name
    before, versions = {}, {}
    for v, meta in etcd.get_prefix("/_meta/journal/segments/ns/"):
        before[meta.key.decode()] = json.loads(v)
        versions[meta.key.decode()] = meta.version
    start_rev = etcd.put("/_meta/marker", "start").header.revision + 1

    victim = "s1"
    affected = {k for k, s in before.items() if victim in s["isr"]}
    assert len(affected) > 600   # many batches of 64: the kill lands among them
    # Kill the leader as soon as its first change to a segment is seen.
    first, cancel_first = etcd.watch_prefix("/_meta/journal/segments/ns/",
                                            start_revision=start_rev)
    nodes[victim].stop()
    next(iter(first))
    leader.kill()
    cancel_first()
    new_leader = cluster.leader(deadline=20)
    assert new_leader is not leader

    def done():
        now = {meta.key.decode(): (json.loads(v), meta.version)
               for v, meta in etcd.get_prefix("/_meta/journal/segments/ns/")}
        return all(victim not in s["isr"] and s["leader"] != victim
                   for s, _ in now.values()) and now
    now = wait_for(done, 20, "every segment off the dead node")
    after = {k: s for k, (s, _) in now.items()}
    # The new leader finished what the old one had started.
    log = new_leader.log_text()
    assert "controllers: starting on the leader" in log
    finished = [int(l.split("gone: ")[1].split()[0]) for l in log.splitlines()
                if "journal: storage node s1 gone:" in l]
    assert finished and 0 < finished[0] < len(affected), (finished, len(affected))

    # Each affected segment changed exactly once, and no other one changed:
    # its version went up by one (a repeated action would make it two) ...
    assert {k for k, (_, ver) in now.items() if ver != versions[k]} == affected
    assert all(now[k][1] == versions[k] + 1 for k in affected)
    # ... and the watch history since the kill says the same, event by event.
    end_rev = etcd.put("/_meta/marker", "end").header.revision
    events, cancel = etcd.watch_prefix("/_meta/", start_revision=start_rev)
    changes = {}
    for ev in events:
        key = ev.key.decode()
        if key == "/_meta/marker" and ev.mod_revision == end_rev:
            break
        if key.startswith("/_meta/journal/segments/"):
            changes[key] = changes.get(key, 0) + 1
    cancel()
    assert set(changes) == affected
    assert all(n == 1 for n in changes.values()), \
        {k: n for k, n in changes.items() if n != 1}
    for k, s in after.items():
        s0 = before[k]
        if k in affected and s0["leader"] == victim:
            assert s["leader"] == [r for r in s0["isr"] if r != victim][0]
        elif k in affected:
            assert s["leader"] == s0["leader"]
        assert s["leader"] in s["isr"]
    # Only the status change of the dead node, once.
    st, meta = get_json(etcd, "/_meta/status/nodes/storage/s1")
    assert st["state"] == "lost" and meta.version == 2
    leader.start()

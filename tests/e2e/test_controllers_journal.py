"""Controllers: the journal (docs/controllers.md, "Journal") driven as
storage nodes and producers would drive it, with python3-etcd3: shard
creation and placement, refusal when too few nodes are alive, segment roll
in one revision, state edges, ISR compare-and-swap, failover when a storage
node dies, recovery by highest log end offset, preferred-leader rebalance
and garbage collection."""

import json
import time

import pytest

from harness import IS_REFERENCE_ETCD
from metanode import Node, get_json, seg_key, segment, wait_for

pytestmark = pytest.mark.skipif(IS_REFERENCE_ETCD, reason="metad's controllers")

REQ = "/_meta/journal/requests/"


def shard(etcd, ns, name):
    return get_json(etcd, "/_meta/journal/shards/%s/%s" % (ns, name))[0]


def create(etcd, ns, name, replicas=3):
    etcd.put(REQ + "create/%s/%s" % (ns, name), json.dumps({"replicas": replicas}))
    return wait_for(lambda: shard(etcd, ns, name), 5, "shard record %s/%s" % (ns, name))


def storage(etcd, n, ttl=2):
    return [Node(etcd, "storage", "s%d" % i, ttl=ttl).keep_alive() for i in range(n)]


def check_invariants(seg):
    assert set(seg["isr"]) <= set(seg["replicas"])
    assert len(set(seg["isr"])) == len(seg["isr"])
    if seg["leader"]:
        assert seg["leader"] in seg["isr"]


def test_refused_then_placed_when_nodes_come(etcd):
    nodes = storage(etcd, 2)
    rec = create(etcd, "ns", "a")
    assert rec == {"status": "refused", "replicas": 3, "reason": "2 of 3 storage nodes alive"}
    nodes.append(Node(etcd, "storage", "s2").keep_alive())
    rec = wait_for(lambda: (shard(etcd, "ns", "a") or {}).get("status") == "active" and
                   shard(etcd, "ns", "a"), 5, "placed once a third node is up")
    assert rec == {"status": "active", "replicas": 3, "active_segment": 0}
    seg = segment(etcd, "ns", "a", 0)
    assert sorted(seg["replicas"]) == ["s0", "s1", "s2"]
    assert seg["state"] == "Write" and seg["leader"] == seg["preferred"]
    assert seg["epochs"] == {n.id: n.epoch for n in nodes}
    check_invariants(seg)


def test_placement_spreads_replicas_and_leaders(etcd):
    nodes = storage(etcd, 4)
    for i in range(8):
        assert create(etcd, "ns", "p%d" % i)["status"] == "active"
    segs = [segment(etcd, "ns", "p%d" % i, 0) for i in range(8)]
    hosted = {n.id: sum(n.id in s["replicas"] for s in segs) for n in nodes}
    led = {n.id: sum(n.id == s["leader"] for s in segs) for n in nodes}
    assert hosted == {"s0": 6, "s1": 6, "s2": 6, "s3": 6}
    assert led == {"s0": 2, "s1": 2, "s2": 2, "s3": 2}


def test_roll_is_one_revision(etcd):
    storage(etcd, 3)
    create(etcd, "ns", "r")
    etcd.put(REQ + "roll/ns/r", json.dumps({"segment": 0}))
    wait_for(lambda: segment(etcd, "ns", "r", 1), 5, "segment 1")
    old, m0 = get_json(etcd, seg_key("ns", "r", 0))
    new, m1 = get_json(etcd, seg_key("ns", "r", 1))
    rec, ms = get_json(etcd, "/_meta/journal/shards/ns/r")
    assert old["state"] == "PreSealUp" and new["state"] == "Write"
    assert rec["active_segment"] == 1
    assert m0.mod_revision == m1.mod_revision == ms.mod_revision
    assert etcd.get(REQ + "roll/ns/r")[0] is None
    # Rolling a segment that is no longer active is refused.
    etcd.put(REQ + "roll/ns/r", json.dumps({"segment": 0}))
    req = wait_for(lambda: get_json(etcd, REQ + "roll/ns/r")[0].get("status"), 5, "refusal")
    assert req == "refused"
    assert shard(etcd, "ns", "r")["active_segment"] == 1


def test_state_edges(etcd):
    storage(etcd, 3)
    create(etcd, "ns", "e")
    key = REQ + "state/ns/e/0000000000"
    etcd.put(key, json.dumps({"to": "Deleting"}))
    req = wait_for(lambda: (get_json(etcd, key)[0] or {}).get("status") and
                   get_json(etcd, key)[0], 5, "refusal")
    assert req == {"to": "Deleting", "status": "refused",
                   "reason": "invalid transition Write -> Deleting"}
    assert segment(etcd, "ns", "e", 0)["state"] == "Write"
    for to in ("PreSealUp", "SealUp", "PreDelete"):
        etcd.put(key, json.dumps({"to": to}))
        wait_for(lambda: segment(etcd, "ns", "e", 0)["state"] == to, 5, to)
        assert etcd.get(key)[0] is None


def test_isr_compare_and_swap(etcd):
    nodes = {n.id: n for n in storage(etcd, 3)}
    create(etcd, "ns", "i")
    seg, meta = get_json(etcd, seg_key("ns", "i", 0))
    leader = seg["leader"]
    others = [r for r in seg["replicas"] if r != leader]
    key = REQ + "isr/ns/i/0000000000"
    good = {"leader": leader, "epoch": nodes[leader].epoch, "isr": [leader, others[0]],
            "segment_rev": meta.mod_revision}
    etcd.put(key, json.dumps(good))
    wait_for(lambda: segment(etcd, "ns", "i", 0)["isr"] == [leader, others[0]], 5, "isr shrunk")
    # The same request again is stale now: refused, the segment unchanged.
    etcd.put(key, json.dumps(good))
    req = wait_for(lambda: (get_json(etcd, key)[0] or {}).get("status"), 5, "refusal")
    assert req == "refused"
    assert segment(etcd, "ns", "i", 0)["isr"] == [leader, others[0]]
    # A non-leader cannot change it.
    seg, meta = get_json(etcd, seg_key("ns", "i", 0))
    bad = {"leader": others[0], "epoch": nodes[others[0]].epoch, "isr": [others[0]],
           "segment_rev": meta.mod_revision}
    etcd.put(key, json.dumps(bad))
    wait_for(lambda: (get_json(etcd, key)[0] or {}).get("status") == "refused", 5, "refusal")


def test_storage_node_dies_leaders_fail_over(etcd):
    nodes = {n.id: n for n in storage(etcd, 4)}
    for i in range(12):
        create(etcd, "ns", "f%d" % i)
    before = {i: segment(etcd, "ns", "f%d" % i, 0) for i in range(12)}
    victim = "s1"
    led = [i for i, s in before.items() if s["leader"] == victim]
    assert led
    nodes[victim].die()
    wait_for(lambda: etcd.get(nodes[victim].key)[0] is None, 2 + 1.5, "lease expiry")
    detected = time.monotonic()
    for i in led:
        wait_for(lambda: segment(etcd, "ns", "f%d" % i, 0)["leader"] not in (victim,), 1.0,
                 "a new leader for f%d" % i)
    assert time.monotonic() - detected < 1.0
    for i, s0 in before.items():
        s = segment(etcd, "ns", "f%d" % i, 0)
        check_invariants(s)
        assert victim not in s["isr"]
        if i in led:
            # The first surviving ISR member, in ISR order.
            assert s["leader"] == [r for r in s0["isr"] if r != victim][0]
        else:
            assert s["leader"] == s0["leader"]


def test_unavailable_then_recovered_by_highest_offset(etcd):
    nodes = storage(etcd, 3)
    create(etcd, "ns", "u")
    for n in nodes:
        etcd.put("/_meta/journal/offsets/ns/u/0000000000/%s" % n.id,
                 json.dumps({"leo": {"s0": 10, "s1": 30, "s2": 20}[n.id]}), lease=n.lease)
    for n in nodes:
        n.stop()
    seg = wait_for(lambda: segment(etcd, "ns", "u", 0)["state"] == "Unavailable" and
                   segment(etcd, "ns", "u", 0), 5, "Unavailable")
    assert seg["leader"] == "" and seg["isr"] == [] and seg["prev_state"] == "Write"
    # Two come back and report their offsets before registering (as the docs say).
    back = {}
    for nid, leo in (("s0", 10), ("s1", 30)):
        lease = etcd.lease(2)
        etcd.put("/_meta/journal/offsets/ns/u/0000000000/%s" % nid, json.dumps({"leo": leo}),
                 lease=lease)
        back[nid] = lease
    n0 = Node(etcd, "storage", "s0").keep_alive()
    seg = wait_for(lambda: segment(etcd, "ns", "u", 0)["state"] == "Write" and
                   segment(etcd, "ns", "u", 0), 5, "recovered")
    # Only s0 was alive when it recovered: it leads alone, with its new epoch.
    assert seg["leader"] == "s0" and seg["isr"] == ["s0"]
    assert seg["epochs"]["s0"] == n0.epoch
    for lease in back.values():
        lease.revoke()


def test_preferred_leader_comes_back(etcd):
    nodes = {n.id: n for n in storage(etcd, 3)}
    create(etcd, "ns", "b")
    seg, meta = get_json(etcd, seg_key("ns", "b", 0))
    pref = seg["preferred"]
    nodes[pref].stop()
    seg = wait_for(lambda: segment(etcd, "ns", "b", 0)["leader"] != pref and
                   segment(etcd, "ns", "b", 0), 5, "failover")
    back = Node(etcd, "storage", pref).keep_alive()
    # The current leader takes it back into the ISR (it caught up).
    seg, meta = get_json(etcd, seg_key("ns", "b", 0))
    leader = seg["leader"]
    etcd.put(REQ + "isr/ns/b/0000000000", json.dumps({
        "leader": leader, "epoch": nodes[leader].epoch, "isr": seg["isr"] + [pref],
        "segment_rev": meta.mod_revision}))
    wait_for(lambda: segment(etcd, "ns", "b", 0)["leader"] == pref, 5,
             "the preferred leader leads again")
    del back


def test_garbage_collection(etcd):
    nodes = storage(etcd, 3)
    create(etcd, "ns", "g")
    key = REQ + "state/ns/g/0000000000"
    for to in ("PreSealUp", "SealUp", "PreDelete", "Deleting"):
        etcd.put(key, json.dumps({"to": to}))
        wait_for(lambda: segment(etcd, "ns", "g", 0)["state"] == to, 5, to)
    for n in nodes[:2]:
        etcd.put("/_meta/journal/deleted/ns/g/0000000000/%s" % n.id, "{}")
    ack = "/_meta/journal/deleted/ns/g/0000000000/%s" % nodes[2].id
    assert segment(etcd, "ns", "g", 0)["state"] == "Deleting"
    etcd.put(ack, "{}")
    wait_for(lambda: segment(etcd, "ns", "g", 0) is None, 5, "collected")
    assert list(etcd.get_prefix("/_meta/journal/deleted/ns/g/")) == []


def test_decommission_moves_replicas(etcd):
    nodes = {n.id: n for n in storage(etcd, 4)}
    create(etcd, "ns", "d")
    seg = segment(etcd, "ns", "d", 0)
    gone = seg["leader"]
    spare = [n for n in nodes if n not in seg["replicas"]][0]
    etcd.put("/_meta/decommission/storage/%s" % gone, "{}")
    # Its slot goes to the spare node (out of the ISR until the leader adds
    # it), its leadership to the next ISR member, with no loss of the node.
    new = wait_for(lambda: gone not in segment(etcd, "ns", "d", 0)["replicas"] and
                   segment(etcd, "ns", "d", 0), 5, "replicas moved off %s" % gone)
    check_invariants(new)
    assert spare in new["replicas"] and spare not in new["isr"]
    assert new["epochs"][spare] == nodes[spare].epoch
    assert new["leader"] == [r for r in seg["isr"] if r != gone][0]
    # New placements avoid it.
    rec = create(etcd, "ns", "d2")
    assert rec["status"] == "active"
    assert gone not in segment(etcd, "ns", "d2", 0)["replicas"]
    nodes[gone].stop()
    wait_for(lambda: (get_json(etcd, "/_meta/status/nodes/storage/%s" % gone)[0] or {})
             .get("state") == "decommissioned", 5, "decommissioned, not lost")


def test_restart_finishes_what_no_controller_did(server):
    """Level-triggered: a segment led by a node that is gone (its DELETE was
    never acted on) gets a new leader when the controllers start."""
    etcd = server.client()
    nodes = {n.id: n for n in [Node(etcd, "storage", "s%d" % i, ttl=60) for i in range(2)]}
    seg = {"state": "Write", "replicas": ["ghost", "s0", "s1"],
           "epochs": {"ghost": 1, "s0": nodes["s0"].epoch, "s1": nodes["s1"].epoch},
           "isr": ["ghost", "s1", "s0"], "leader": "ghost", "preferred": "ghost"}
    # Segments are the controllers' (or root's, with auth on) to write.
    server.ctl_ok("user", "add", "root:rootpw")
    server.ctl_ok("auth", "enable")
    server.ctl_ok("--user", "root:rootpw", "put", seg_key("ns", "lvl", 0), json.dumps(seg))
    server.ctl_ok("--user", "root:rootpw", "auth", "disable")
    server.stop()
    server.start()
    etcd = server.client()
    s = wait_for(lambda: segment(etcd, "ns", "lvl", 0)["leader"] != "ghost" and
                 segment(etcd, "ns", "lvl", 0), 5, "a new leader")
    assert s["leader"] == "s1" and s["isr"] == ["s1", "s0"]

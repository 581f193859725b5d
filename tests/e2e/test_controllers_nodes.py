"""Controllers: nodes and heartbeat (docs/controllers.md), driven as a broker
or storage node would drive them — python3-etcd3 in most tests, etcdctl only
in one. A node registers /_meta/nodes/<kind>/<id> on its own lease; the
controller on the leader records /_meta/status/nodes/<kind>/<id>."""

import json
import time

import pytest

from harness import IS_REFERENCE_ETCD

pytestmark = pytest.mark.skipif(IS_REFERENCE_ETCD, reason="metad's controllers")

TTL = 2   # the server's minimum lease TTL (ceil(1.5 x 1 s election timeout))


def wait_for(fn, deadline, what):
    """Poll fn() until it returns something truthy or the deadline passes."""
    end = time.monotonic() + deadline
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (deadline, what))
        time.sleep(0.02)


def status(etcd, kind, node):
    v, _ = etcd.get("/_meta/status/nodes/%s/%s" % (kind, node))
    return json.loads(v) if v is not None else None


def register(etcd, kind, node, ttl=TTL):
    lease = etcd.lease(ttl)
    etcd.put("/_meta/nodes/%s/%s" % (kind, node), json.dumps({"addr": "127.0.0.1:1883"}),
             lease=lease)
    _, meta = etcd.get("/_meta/nodes/%s/%s" % (kind, node))
    return lease, meta.create_revision


def test_node_up_then_lost_within_ttl(etcd):
    lease, epoch = register(etcd, "broker", "b1")
    wait_for(lambda: status(etcd, "broker", "b1") == {"state": "up", "epoch": epoch}, 5,
             "status up")
    # Keep it alive past its TTL: it must stay up.
    end = time.monotonic() + TTL + 1
    while time.monotonic() < end:
        lease.refresh()
        time.sleep(0.5)
    assert status(etcd, "broker", "b1")["state"] == "up"
    # The node dies: its last keep-alive is now; detection within TTL + 1 s.
    lease.refresh()
    died = time.monotonic()
    st = wait_for(lambda: (status(etcd, "broker", "b1") or {}).get("state") == "lost" and
                  status(etcd, "broker", "b1"), TTL + 1.5, "status lost")
    assert time.monotonic() - died <= TTL + 1.0
    assert st == {"state": "lost", "epoch": epoch}
    assert etcd.get("/_meta/nodes/broker/b1")[0] is None


def test_return_is_a_new_epoch(etcd):
    lease, epoch = register(etcd, "storage", "s1")
    wait_for(lambda: status(etcd, "storage", "s1") == {"state": "up", "epoch": epoch}, 5, "up")
    lease.revoke()
    wait_for(lambda: status(etcd, "storage", "s1") == {"state": "lost", "epoch": epoch}, 5, "lost")
    _, epoch2 = register(etcd, "storage", "s1")
    assert epoch2 > epoch
    wait_for(lambda: status(etcd, "storage", "s1") == {"state": "up", "epoch": epoch2}, 5,
             "up again with the new epoch")


def test_decommission_is_not_a_loss(etcd):
    lease, epoch = register(etcd, "storage", "s2")
    wait_for(lambda: status(etcd, "storage", "s2") == {"state": "up", "epoch": epoch}, 5, "up")
    etcd.put("/_meta/decommission/storage/s2", "{}")
    lease.revoke()
    wait_for(lambda: status(etcd, "storage", "s2") == {"state": "decommissioned", "epoch": epoch},
             5, "decommissioned")


def test_every_status_change_is_one_write(etcd):
    """up then lost, each written once: the status key's history is exactly
    two versions, up then lost (watched from before the node existed)."""
    start = etcd.put("/_meta/marker", "x").header.revision
    lease, epoch = register(etcd, "broker", "b9")
    wait_for(lambda: status(etcd, "broker", "b9") == {"state": "up", "epoch": epoch}, 5, "up")
    lease.revoke()
    wait_for(lambda: status(etcd, "broker", "b9") == {"state": "lost", "epoch": epoch}, 5, "lost")
    # Both writes are history by now: the watch replays them at once.
    events, cancel = etcd.watch_prefix("/_meta/status/nodes/broker/b9", start_revision=start)
    got = []
    for ev in events:
        got.append(ev)
        if len(got) == 2:
            break
    cancel()
    _, meta = etcd.get("/_meta/status/nodes/broker/b9")
    assert meta.version == 2
    assert [json.loads(e.value) for e in got[:2]] == [{"state": "up", "epoch": epoch},
                                                       {"state": "lost", "epoch": epoch}]


def test_restart_reconciles_from_the_keys(server):
    """A status record that no longer matches the keys (a leader that died
    before acting) is put right when the controllers start again."""
    etcd = server.client()
    # Only the controllers (or root, with auth on) write status records.
    server.ctl_ok("user", "add", "root:rootpw")
    server.ctl_ok("auth", "enable")
    server.ctl_ok("--user", "root:rootpw", "put", "/_meta/status/nodes/broker/ghost",
                  json.dumps({"state": "up", "epoch": 7}))
    server.ctl_ok("--user", "root:rootpw", "auth", "disable")
    lease, epoch = register(etcd, "broker", "alive", ttl=60)
    wait_for(lambda: status(etcd, "broker", "alive") == {"state": "up", "epoch": epoch}, 5, "up")
    server.stop()
    server.start()
    etcd = server.client()
    wait_for(lambda: status(etcd, "broker", "ghost") == {"state": "lost", "epoch": 7}, 5,
             "the ghost recorded as lost")
    # The lease survived the restart (with a fresh TTL): the live node stays up.
    assert status(etcd, "broker", "alive") == {"state": "up", "epoch": epoch}


def test_etcdctl_only(server):
    """A node driven with etcdctl alone, following docs/controllers.md."""
    out = server.ctl_ok("lease", "grant", str(TTL))
    lease = out.split()[1]
    server.ctl_ok("put", "/_meta/nodes/broker/ctl1", '{"addr":"127.0.0.1:1884"}',
                  "--lease=" + lease)
    doc = server.ctl_json("get", "/_meta/nodes/broker/ctl1")
    epoch = doc["kvs"][0]["create_revision"]

    def state():
        out = server.ctl_ok("get", "/_meta/status/nodes/broker/ctl1", "--print-value-only")
        return json.loads(out) if out.strip() else None
    wait_for(lambda: state() == {"state": "up", "epoch": epoch}, 5, "up")
    server.ctl_ok("lease", "revoke", lease)
    wait_for(lambda: state() == {"state": "lost", "epoch": epoch}, 5, "lost")

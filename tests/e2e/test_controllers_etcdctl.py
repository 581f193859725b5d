"""A broker and storage nodes driven with etcdctl alone, following
docs/controllers.md: any etcd client can act as one."""

import json

import pytest

from harness import IS_REFERENCE_ETCD
from metanode import wait_for

pytestmark = pytest.mark.skipif(IS_REFERENCE_ETCD, reason="metad's controllers")


def get(server, key):
    out = server.ctl_ok("get", key, "--print-value-only")
    return json.loads(out) if out.strip() else None


def register(server, kind, node, ttl=2):
    lease = server.ctl_ok("lease", "grant", str(ttl)).split()[1]
    server.ctl_ok("put", "/_meta/nodes/%s/%s" % (kind, node), "{}", "--lease=" + lease)
    epoch = server.ctl_json("get", "/_meta/nodes/%s/%s" % (kind, node))["kvs"][0]["create_revision"]
    return lease, epoch


def test_broker_with_etcdctl(server):
    lease, epoch = register(server, "broker", "eb1")
    server.ctl_ok("put", "/_meta/mqtt/sessions/t/c1", '{"broker":"eb1","expiry_s":30}')
    server.ctl_ok("put", "/_meta/mqtt/presence/t/c1", '{"broker":"eb1"}', "--lease=" + lease)
    server.ctl_ok("put", "/_meta/mqtt/subs/t/c1/a%2Fb", '{"qos":1}')
    server.ctl_ok("put", "/_meta/mqtt/wills/t/c1", '{"topic":"bye","payload":"","delay_s":0}')
    server.ctl_ok("lease", "revoke", lease)     # the broker dies
    rec = wait_for(lambda: get(server, "/_meta/mqtt/expiring/eb1/%d/30" % epoch), 5,
                   "the expiry of its session started")
    assert rec == {"broker": "eb1", "epoch": epoch, "expiry_s": 30}
    fired = wait_for(lambda: get(server, "/_meta/mqtt/will-fire/t/c1"), 5, "the will fired")
    assert fired["topic"] == "bye"
    # A live broker publishes the will and consumes the fire key.
    assert server.ctl_ok("del", "/_meta/mqtt/will-fire/t/c1").strip() == "1"
    assert get(server, "/_meta/status/nodes/broker/eb1") == {"state": "lost", "epoch": epoch}


def test_storage_nodes_with_etcdctl(server):
    for i in range(3):
        register(server, "storage", "es%d" % i, ttl=60)
    server.ctl_ok("put", "/_meta/journal/requests/create/ns/x", '{"replicas":3}')
    rec = wait_for(lambda: get(server, "/_meta/journal/shards/ns/x"), 5, "the shard")
    assert rec == {"status": "active", "replicas": 3, "active_segment": 0}
    seg = get(server, "/_meta/journal/segments/ns/x/0000000000")
    assert sorted(seg["replicas"]) == ["es0", "es1", "es2"] and seg["state"] == "Write"
    server.ctl_ok("put", "/_meta/journal/requests/roll/ns/x", '{"segment":0}')
    wait_for(lambda: get(server, "/_meta/journal/segments/ns/x/0000000001"), 5, "segment 1")
    revs = {server.ctl_json("get", k)["kvs"][0]["mod_revision"] for k in (
        "/_meta/journal/segments/ns/x/0000000000", "/_meta/journal/segments/ns/x/0000000001",
        "/_meta/journal/shards/ns/x")}
    assert len(revs) == 1     # the roll is one revision

"""Controllers: MQTT (docs/controllers.md, "MQTT") driven as brokers would
drive it, with python3-etcd3: a dead broker's sessions start expiry on a
fresh lease and their wills start (or fire), its share groups get a new
leader and its connectors a new broker, within 1 s after detection; ended
sessions take their subscriptions along and fire their will; reconnection
cancels a will timer; topics are deleted asynchronously."""

import json
import time

import pytest

from harness import IS_REFERENCE_ETCD
from metanode import Node, get_json, wait_for

pytestmark = pytest.mark.skipif(IS_REFERENCE_ETCD, reason="metad's controllers")

M = "/_meta/mqtt/"


def connect(etcd, broker, tenant, client, expiry_s=10, will_delay=None, subs=()):
    """What a broker writes when a client connects (docs/controllers.md)."""
    etcd.put(M + "sessions/%s/%s" % (tenant, client),
             json.dumps({"broker": broker.id, "expiry_s": expiry_s}))
    etcd.put(M + "presence/%s/%s" % (tenant, client), json.dumps({"broker": broker.id}),
             lease=broker.lease)
    if will_delay is not None:
        etcd.put(M + "wills/%s/%s" % (tenant, client),
                 json.dumps({"topic": "t/%s" % client, "payload": "Ynll",
                             "delay_s": will_delay}))
    for f in subs:
        etcd.put(M + "subs/%s/%s/%s" % (tenant, client, f), json.dumps({"qos": 1}))


def expiring(etcd, broker, expiry_s):
    """The expiring record of a dead broker's sessions with this expiry_s:
    (value, remaining TTL of its lease), or None."""
    v, meta = etcd.get(M + "expiring/%s/%d/%d" % (broker.id, broker.epoch, expiry_s))
    if v is None:
        return None
    return json.loads(v), etcd.get_lease_info(meta.lease_id).TTL


def session_lease(etcd, tenant, client):
    _, meta = etcd.get(M + "sessions/%s/%s" % (tenant, client))
    return None if meta is None else meta.lease_id


def test_dead_broker_hand_over(etcd):
    b1 = Node(etcd, "broker", "b1").keep_alive()
    b2 = Node(etcd, "broker", "b2", ttl=30).keep_alive()
    for i in range(20):
        connect(etcd, b1, "t", "c%d" % i, expiry_s=30, subs=("a%2Fb",))
    connect(etcd, b1, "t", "w5", expiry_s=30, will_delay=5)
    connect(etcd, b1, "t", "w0", expiry_s=30, will_delay=0)
    connect(etcd, b2, "t", "other", expiry_s=30)
    # A share group led by b1 (it came first) with b2 as a member too.
    etcd.put(M + "share/t/g1/members/b1", "{}", lease=b1.lease)
    leader = wait_for(lambda: get_json(etcd, M + "share/t/g1/leader")[0], 5, "a group leader")
    assert leader == {"broker": "b1", "epoch": b1.epoch}
    etcd.put(M + "share/t/g1/members/b2", "{}", lease=b2.lease)
    # A connector: b1 runs it (b2 would be picked as well: ties go to the smaller id).
    etcd.put(M + "connectors/t/k1", json.dumps({"type": "kafka"}))
    assign = wait_for(lambda: get_json(etcd, M + "connector-assign/t/k1")[0], 5, "assignment")
    assert assign == {"broker": "b1", "epoch": b1.epoch}

    b1.die()
    wait_for(lambda: etcd.get(b1.key)[0] is None, 2 + 1.5, "b1's lease expiry")
    detected = time.monotonic()
    rec = wait_for(lambda: expiring(etcd, b1, 30), 1.0, "the expiry of b1's sessions started")
    wait_for(lambda: get_json(etcd, M + "share/t/g1/leader")[0] ==
             {"broker": "b2", "epoch": b2.epoch}, 1.0, "the group re-led by b2")
    wait_for(lambda: get_json(etcd, M + "connector-assign/t/k1")[0] ==
             {"broker": "b2", "epoch": b2.epoch}, 1.0, "the connector on b2")
    wait_for(lambda: etcd.get(M + "will-timers/t/w5")[0] is not None, 1.0, "the will timer")
    fired = wait_for(lambda: get_json(etcd, M + "will-fire/t/w0")[0], 1.0, "the will with delay 0")
    assert time.monotonic() - detected < 1.0
    assert fired["topic"] == "t/w0" and etcd.get(M + "wills/t/w0")[0] is None
    assert rec[0] == {"broker": "b1", "epoch": b1.epoch, "expiry_s": 30}
    assert 25 <= rec[1] <= 30
    # One record for all of them: the sessions themselves are unchanged.
    assert get_json(etcd, M + "sessions/t/c0")[0] == {"broker": "b1", "expiry_s": 30}
    assert session_lease(etcd, "t", "c0") == 0
    assert list(etcd.get_prefix(M + "expiring/b2/")) == []
    # The will with a delay fires when its timer runs out (5 s).
    fired = wait_for(lambda: get_json(etcd, M + "will-fire/t/w5")[0], 5 + 2, "the delayed will")
    assert fired["topic"] == "t/w5"


def test_session_expiry_takes_subscriptions_and_fires_the_will(etcd):
    b1 = Node(etcd, "broker", "b1").keep_alive()
    connect(etcd, b1, "t", "x", expiry_s=2, will_delay=60, subs=("s%2F1", "s%2F2"))
    b1.stop()
    wait_for(lambda: expiring(etcd, b1, 2), 2, "expiry started")
    wait_for(lambda: etcd.get(M + "sessions/t/x")[0] is None, 2 + 1.5, "the session expired")
    wait_for(lambda: list(etcd.get_prefix(M + "subs/t/x/")) == [], 1, "subscriptions removed")
    fired = wait_for(lambda: get_json(etcd, M + "will-fire/t/x")[0], 1,
                     "the will fired when the session ended before its delay")
    assert fired["topic"] == "t/x"
    assert etcd.get(M + "will-timers/t/x")[0] is None


def test_reconnect_cancels_the_will(etcd):
    b1 = Node(etcd, "broker", "b1").keep_alive()
    b2 = Node(etcd, "broker", "b2", ttl=30).keep_alive()
    connect(etcd, b1, "t", "r", expiry_s=2, will_delay=3)
    b1.stop()
    wait_for(lambda: etcd.get(M + "will-timers/t/r")[0] is not None, 2, "the will timer")
    assert expiring(etcd, b1, 2) is not None
    # The client comes back on b2 before the delay: b2 takes the session.
    connect(etcd, b2, "t", "r", expiry_s=30)
    wait_for(lambda: etcd.get(M + "will-timers/t/r")[0] is None, 2, "the timer cancelled")
    # Past the delay and the old expiry: no will fired, the session lives on b2.
    end = time.monotonic() + 4
    while time.monotonic() < end:
        assert etcd.get(M + "will-fire/t/r")[0] is None
        time.sleep(0.1)
    assert expiring(etcd, b1, 2) is None
    assert get_json(etcd, M + "sessions/t/r")[0] == {"broker": "b2", "expiry_s": 30}


def test_share_group_leaders_spread(etcd):
    brokers = [Node(etcd, "broker", "b%d" % i, ttl=30).keep_alive() for i in range(2)]
    # Each group's members join together (one Txn): the controller picks then.
    for g in range(4):
        etcd.transaction(compare=[], failure=[], success=[
            etcd.transactions.put(M + "share/t/g%d/members/%s" % (g, b.id), "{}",
                                  lease=b.lease) for b in brokers])
    leaders = [wait_for(lambda: get_json(etcd, M + "share/t/g%d/leader" % g)[0], 5, "leader")
               ["broker"] for g in range(4)]
    assert sorted(leaders) == ["b0", "b0", "b1", "b1"]


def test_topic_deleted_asynchronously(etcd):
    etcd.put(M + "topics/t/a%2Fb", json.dumps({"created": 1}))
    etcd.put(M + "retained/t/a%2Fb", json.dumps({"payload": "eA=="}))
    rev = etcd.put(M + "requests/delete-topic/t/a%2Fb", "{}").header.revision
    wait_for(lambda: etcd.get(M + "requests/delete-topic/t/a%2Fb")[0] is None, 5, "deletion")
    assert etcd.get(M + "topics/t/a%2Fb")[0] is None
    _, meta = etcd.get(M + "retained/t/a%2Fb")
    assert meta is None
    del rev

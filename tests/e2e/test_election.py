"""Elections: etcd's v3election service (Campaign waits its turn, Leader,
Proclaim, Resign, Observe, errors) and `etcdctl elect` (client-side recipe)
with a leader change when the leader process is killed."""

import os
import queue
import signal
import subprocess
import threading
import time

import grpc
from etcd3 import etcdrpc

import concurrencypb as pb
from harness import ETCDCTL, header_ok, rpc_error


def grant(server, ttl=30):
    return etcdrpc.LeaseStub(server.channel()).LeaseGrant(
        etcdrpc.LeaseGrantRequest(TTL=ttl), timeout=10).ID


def test_campaign_leader_proclaim_observe_resign(server):
    e = pb.ElectionStub(server.channel())
    l1, l2 = grant(server), grant(server)
    code, msg = rpc_error(e.Leader, pb.LeaderRequest(name=b"el"))
    assert (code, msg) == (grpc.StatusCode.UNKNOWN, "election: no leader")
    c1 = e.Campaign(pb.CampaignRequest(name=b"el", lease=l1, value=b"one"), timeout=10)
    header_ok(c1.header)
    lk = c1.leader
    assert (lk.name, lk.key, lk.lease) == (b"el", b"el/%x" % l1, l1)
    assert lk.rev == c1.header.revision
    observed = queue.Queue()
    obs = e.Observe(pb.LeaderRequest(name=b"el"), timeout=60)
    threading.Thread(target=lambda: [observed.put(r) for r in obs], daemon=True).start()
    first = observed.get(timeout=10)
    assert (first.kv.key, first.kv.value) == (lk.key, b"one")
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("c2", e.Campaign(
        pb.CampaignRequest(name=b"el", lease=l2, value=b"two"), timeout=30)))
    t.start()
    e.Proclaim(pb.ProclaimRequest(leader=lk, value=b"uno"), timeout=10)
    assert e.Leader(pb.LeaderRequest(name=b"el"), timeout=10).kv.value == b"uno"
    assert observed.get(timeout=10).kv.value == b"uno"
    assert t.is_alive() and not box
    r = e.Resign(pb.ResignRequest(leader=lk), timeout=10)
    header_ok(r.header)
    t.join(15)
    lk2 = box["c2"].leader
    assert lk2.key == b"el/%x" % l2
    nxt = observed.get(timeout=10)
    assert (nxt.kv.key, nxt.kv.value) == (lk2.key, b"two")
    # The old leader key no longer proclaims.
    code, msg = rpc_error(e.Proclaim, pb.ProclaimRequest(leader=lk, value=b"x"))
    assert (code, msg) == (grpc.StatusCode.UNKNOWN, "election: not leader")
    code, msg = rpc_error(e.Proclaim, pb.ProclaimRequest(value=b"x"))
    assert (code, msg) == (grpc.StatusCode.UNKNOWN, '"leader" field must be provided')
    obs.cancel()


def test_campaign_with_lease_0_gets_a_fresh_session_lease(server, kv):
    # etcd's Campaign, like Lock, runs concurrency.NewSession(WithLease(req.Lease)):
    # with lease 0 it grants a 60 s lease (not kept alive) and campaigns with it.
    e = pb.ElectionStub(server.channel())
    c = e.Campaign(pb.CampaignRequest(name=b"e0", lease=0, value=b"v"), timeout=10)
    header_ok(c.header)
    lk = c.leader
    assert lk.lease != 0 and (lk.name, lk.key) == (b"e0", b"e0/%x" % lk.lease)
    (kv0,) = kv.Range(etcdrpc.RangeRequest(key=lk.key), timeout=10).kvs
    assert (kv0.value, kv0.lease, kv0.create_revision) == (b"v", lk.lease, lk.rev)
    ttl = etcdrpc.LeaseStub(server.channel()).LeaseTimeToLive(
        etcdrpc.LeaseTimeToLiveRequest(ID=lk.lease, keys=True), timeout=10)
    assert ttl.grantedTTL == 60 and 0 < ttl.TTL <= 60 and list(ttl.keys) == [lk.key], ttl
    assert e.Leader(pb.LeaderRequest(name=b"e0"), timeout=10).kv.key == lk.key


def _readline(p, q):
    for line in p.stdout:
        q.put(line.rstrip("\n"))


def _spawn(server, *args):
    env = dict(os.environ, ETCDCTL_API="3")
    p = subprocess.Popen([ETCDCTL, "--endpoints", server.client_url, "elect"] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    q = queue.Queue()
    threading.Thread(target=_readline, args=(p, q), daemon=True).start()
    return p, q


def _lines(q, n, timeout=15):
    end = time.monotonic() + timeout
    return [q.get(timeout=max(0.1, end - time.monotonic())) for _ in range(n)]


def test_etcdctl_elect_leader_change_when_leader_killed(server, kv):
    a, qa = _spawn(server, "job", "alpha")
    procs = [a]
    try:
        key_a, val_a = _lines(qa, 2)
        assert key_a.startswith("job/") and val_a == "alpha"
        b, qb = _spawn(server, "job", "beta")
        obs, qo = _spawn(server, "-l", "job")
        procs += [b, obs]
        assert _lines(qo, 2) == [key_a, "alpha"]
        # B has queued its key behind A's and is not leader.
        end = time.monotonic() + 10
        while kv.Range(etcdrpc.RangeRequest(key=b"job/", range_end=b"job0"),
                       timeout=10).count < 2:
            assert time.monotonic() < end
            time.sleep(0.02)
        assert qb.empty()
        # Kill the leader outright; its session lease is what ends its term
        # (etcdctl's 60 s TTL: revoke it rather than wait).
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        lease = int(key_a.split("/", 1)[1], 16)
        etcdrpc.LeaseStub(server.channel()).LeaseRevoke(
            etcdrpc.LeaseRevokeRequest(ID=lease), timeout=10)
        key_b, val_b = _lines(qb, 2)
        assert key_b.startswith("job/") and key_b != key_a and val_b == "beta"
        assert _lines(qo, 2) == [key_b, "beta"]
        # SIGINT makes etcdctl resign: the election is empty again.
        b.send_signal(signal.SIGINT)
        b.wait(10)
        end = time.monotonic() + 10
        while kv.Range(etcdrpc.RangeRequest(key=b"job/", range_end=b"job0"),
                       timeout=10).count:
            assert time.monotonic() < end
            time.sleep(0.02)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)


def test_cancelled_campaign_resigns(server, kv):
    e = pb.ElectionStub(server.channel())
    la, lb, lc = grant(server), grant(server), grant(server)
    a = e.Campaign(pb.CampaignRequest(name=b"q", lease=la, value=b"a"), timeout=10).leader
    code, _ = rpc_error(e.Campaign, pb.CampaignRequest(name=b"q", lease=lb, value=b"b"),
                        timeout=0.5)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("c", e.Campaign(
        pb.CampaignRequest(name=b"q", lease=lc, value=b"c"), timeout=30)))
    t.start()
    end = time.monotonic() + 10
    while kv.Range(etcdrpc.RangeRequest(key=b"q/%x" % lc), timeout=10).count == 0:
        assert time.monotonic() < end
        time.sleep(0.02)
    e.Resign(pb.ResignRequest(leader=a), timeout=10)
    t.join(15)
    assert box["c"].leader.key == b"q/%x" % lc
    assert kv.Range(etcdrpc.RangeRequest(key=b"q/%x" % lb), timeout=10).count == 0

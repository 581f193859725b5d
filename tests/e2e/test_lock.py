"""Locks: etcd's v3lock service (Lock waits for older holders, Unlock, lease
expiry hands the lock on, unknown lease), `etcdctl lock` contention between
processes with mutual exclusion checked from a shared log, and
python3-etcd3's lock() (client-side recipe)."""

import os
import subprocess
import threading
import time

import grpc
import pytest
from etcd3 import etcdrpc

import concurrencypb as pb
from harness import ETCDCTL, header_ok, rpc_error


def grant(server, ttl=30):
    return etcdrpc.LeaseStub(server.channel()).LeaseGrant(
        etcdrpc.LeaseGrantRequest(TTL=ttl), timeout=10).ID


def lock_in_thread(stub, name, lease):
    box = {}

    def run():
        try:
            box["resp"] = stub.Lock(pb.LockRequest(name=name, lease=lease), timeout=30)
        except grpc.RpcError as e:
            box["err"] = e
    t = threading.Thread(target=run)
    t.start()
    return t, box


def test_lock_service_waits_for_older_holder(server, kv):
    stub = pb.LockStub(server.channel())
    l1, l2 = grant(server), grant(server)
    r1 = stub.Lock(pb.LockRequest(name=b"mylock", lease=l1), timeout=10)
    header_ok(r1.header)
    assert r1.key == b"mylock/%x" % l1
    t, box = lock_in_thread(stub, b"mylock", l2)
    # The waiter's key is queued behind ours (created later) and it has no answer.
    key2 = b"mylock/%x" % l2
    end = time.monotonic() + 10
    while kv.Range(etcdrpc.RangeRequest(key=key2), timeout=10).count == 0:
        assert time.monotonic() < end
        time.sleep(0.02)
    assert t.is_alive() and not box
    u = stub.Unlock(pb.UnlockRequest(key=r1.key), timeout=10)
    header_ok(u.header)
    t.join(15)
    assert box["resp"].key == key2
    owner = kv.Range(etcdrpc.RangeRequest(key=key2), timeout=10).kvs[0]
    assert owner.lease == l2
    # Locking again with the same lease is a retry: it keeps the key.
    again = stub.Lock(pb.LockRequest(name=b"mylock", lease=l2), timeout=10)
    assert again.key == key2
    stub.Unlock(pb.UnlockRequest(key=key2), timeout=10)


def test_lock_passes_on_when_holder_lease_is_revoked(server):
    stub = pb.LockStub(server.channel())
    lease = etcdrpc.LeaseStub(server.channel())
    l1, l2 = grant(server), grant(server)
    stub.Lock(pb.LockRequest(name=b"lk", lease=l1), timeout=10)
    t, box = lock_in_thread(stub, b"lk", l2)
    lease.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=l1), timeout=10)
    t.join(15)
    assert box["resp"].key == b"lk/%x" % l2


def test_lock_with_unknown_lease(server):
    stub = pb.LockStub(server.channel())
    code, msg = rpc_error(stub.Lock, pb.LockRequest(name=b"x", lease=0x77))
    # etcd's v3lock returns the client library's error as a plain Go error:
    # gRPC turns it into Unknown with etcd's text.
    assert (code, msg) == (grpc.StatusCode.UNKNOWN, "etcdserver: requested lease not found")


def test_etcdctl_lock_contention_is_mutually_exclusive(server, tmp_path):
    log = tmp_path / "cs.log"
    section = ("echo start $$ >> %s; sleep 0.2; echo end $$ >> %s" % (log, log))
    script = ("for i in 1 2 3; do %s --endpoints %s lock --ttl 5 shared-lock -- "
              "sh -c '%s' || exit 1; done" % (ETCDCTL, server.client_url, section))
    env = dict(os.environ, ETCDCTL_API="3")
    procs = [subprocess.Popen(["sh", "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    lines = [l.split() for l in log.read_text().splitlines()]
    assert len(lines) == 12, lines
    # Every critical section ends before the next one starts.
    for i in range(0, 12, 2):
        (start, spid), (end, epid) = lines[i], lines[i + 1]
        assert (start, end) == ("start", "end") and spid == epid, lines
    assert len({pid for _, pid in lines}) == 6


@pytest.fixture
def etcd3_lock_fixed(monkeypatch):
    """python3-etcd3 0.12 passes tenacity an old-style wait(attempt, delay)
    callback; tenacity 8 calls wait(retry_state). Adapt it (a client bug)."""
    import etcd3.locks as locks
    import tenacity

    real_retry = tenacity.retry

    def retry(*a, **kw):
        w = kw.get("wait")
        if callable(w) and not isinstance(w, tenacity.wait.wait_base):
            kw["wait"] = lambda rs: w(rs.attempt_number, rs.seconds_since_start)
        return real_retry(*a, **kw)

    class Shim:
        def __getattr__(self, name):
            return retry if name == "retry" else getattr(tenacity, name)
    monkeypatch.setattr(locks, "tenacity", Shim())


def test_python_etcd3_lock(server, etcd3_lock_fixed):
    c1, c2 = server.client(), server.client()
    a = c1.lock("py-lock", ttl=10)
    b = c2.lock("py-lock", ttl=10)
    assert a.acquire(timeout=5)
    assert a.is_acquired()
    assert not b.acquire(timeout=1)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("ok", b.acquire(timeout=10)))
    t.start()
    a.release()
    t.join(15)
    assert box["ok"] and b.is_acquired()
    b.release()


def test_cancelled_lock_gives_its_place_up(server, kv):
    stub = pb.LockStub(server.channel())
    la, lb, lc = grant(server), grant(server), grant(server)
    a = stub.Lock(pb.LockRequest(name=b"q", lease=la), timeout=10)
    # B gives up waiting (deadline); its key stays queued until it wakes.
    code, _ = rpc_error(stub.Lock, pb.LockRequest(name=b"q", lease=lb), timeout=0.5)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    t, box = lock_in_thread(stub, b"q", lc)
    key_c = b"q/%x" % lc
    end = time.monotonic() + 10
    while kv.Range(etcdrpc.RangeRequest(key=key_c), timeout=10).count == 0:
        assert time.monotonic() < end
        time.sleep(0.02)
    stub.Unlock(pb.UnlockRequest(key=a.key), timeout=10)
    # C is not held up by B, which left.
    t.join(15)
    assert box["resp"].key == key_c
    assert kv.Range(etcdrpc.RangeRequest(key=b"q/%x" % lb), timeout=10).count == 0


def session_lease(server, key, lease):
    """The lease etcd's per-call session put key under: a fresh one granted
    with the session TTL (60 s) and not kept alive."""
    assert lease != 0
    ttl = etcdrpc.LeaseStub(server.channel()).LeaseTimeToLive(
        etcdrpc.LeaseTimeToLiveRequest(ID=lease, keys=True), timeout=10)
    assert ttl.grantedTTL == 60, ttl
    assert 0 < ttl.TTL <= 60, ttl
    assert list(ttl.keys) == [key], ttl


def test_lock_with_lease_0_gets_a_fresh_session_lease(server, kv):
    # etcd's Lock runs concurrency.NewSession(WithLease(req.Lease)): with lease
    # 0 that grants a 60 s lease, then Orphan()s the session, so the lock frees
    # itself when that lease expires.
    stub = pb.LockStub(server.channel())
    r1 = stub.Lock(pb.LockRequest(name=b"l0", lease=0), timeout=10)
    header_ok(r1.header)
    name, hexid = r1.key.split(b"/", 1)
    l1 = int(hexid, 16)
    assert name == b"l0" and r1.key == b"l0/%x" % l1
    (held,) = kv.Range(etcdrpc.RangeRequest(key=r1.key), timeout=10).kvs
    assert held.lease == l1
    session_lease(server, r1.key, l1)
    # Another Lock with lease 0 is another session, queued behind the first,
    # and gets the lock when the first session's lease goes.
    t, box = lock_in_thread(stub, b"l0", 0)
    end = time.monotonic() + 10
    while kv.Range(etcdrpc.RangeRequest(key=b"l0/", range_end=b"l00"), timeout=10).count < 2:
        assert time.monotonic() < end
        time.sleep(0.02)
    assert t.is_alive() and not box
    etcdrpc.LeaseStub(server.channel()).LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=l1), timeout=10)
    t.join(15)
    r2 = box["resp"]
    l2 = int(r2.key.split(b"/", 1)[1], 16)
    assert l2 not in (0, l1)
    session_lease(server, r2.key, l2)

"""Leases: grant (server- and client-chosen IDs, minimum TTL, errors), put with
a lease and detach by re-put, keep-alive (stream; unknown lease -> TTL 0),
time-to-live with keys (unknown -> TTL -1), list, revoke (keys gone in one
revision, delete events seen by a watcher), expiry within TTL + 1 s, and
leases surviving a restart with a fresh TTL."""

import threading
import time

import grpc
from etcd3 import etcdrpc

from harness import ctl_error, header_ok, rpc_error

NOT_FOUND = "etcdserver: requested lease not found"


def lease_stub(server):
    return etcdrpc.LeaseStub(server.channel())


def grant(lease, ttl, id=0):
    return lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=ttl, ID=id), timeout=10)


def put(kv, key, value, lease=0):
    return kv.Put(etcdrpc.PutRequest(key=key, value=value, lease=lease), timeout=10)


def ttl_of(lease, id, keys=False):
    return lease.LeaseTimeToLive(etcdrpc.LeaseTimeToLiveRequest(ID=id, keys=keys), timeout=10)


def keepalive_once(lease, ids):
    resps = lease.LeaseKeepAlive(iter([etcdrpc.LeaseKeepAliveRequest(ID=i) for i in ids]),
                                 timeout=10)
    return list(resps)


def test_grant_ids_ttl_and_errors(server):
    lease = lease_stub(server)
    g = grant(lease, 30)
    header_ok(g.header)
    assert g.ID > 0 and g.TTL == 30 and g.error == ""
    g2 = grant(lease, 30)
    assert g2.ID != g.ID
    # etcd raises a TTL below the minimum (ceil(1.5 x 1 s election timeout)).
    assert grant(lease, 1).TTL == 2
    assert grant(lease, 0x1234, id=0x1234).ID == 0x1234
    code, msg = rpc_error(lease.LeaseGrant, etcdrpc.LeaseGrantRequest(TTL=10, ID=0x1234))
    assert (code, msg) == (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: lease already exists")
    code, msg = rpc_error(lease.LeaseGrant, etcdrpc.LeaseGrantRequest(TTL=9000000001))
    assert (code, msg) == (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: too large lease TTL")
    code, msg = rpc_error(lease.LeaseRevoke, etcdrpc.LeaseRevokeRequest(ID=0x999))
    assert (code, msg) == (grpc.StatusCode.NOT_FOUND, NOT_FOUND)
    ids = {l.ID for l in lease.LeaseLeases(etcdrpc.LeaseLeasesRequest(), timeout=10).leases}
    assert {g.ID, g2.ID, 0x1234} <= ids


def test_put_with_lease_ttl_keys_detach_and_revoke(server, kv):
    lease = lease_stub(server)
    code, msg = rpc_error(kv.Put, etcdrpc.PutRequest(key=b"x", value=b"1", lease=0x4242))
    assert (code, msg) == (grpc.StatusCode.NOT_FOUND, NOT_FOUND)
    lid = grant(lease, 60).ID
    for k in (b"l/a", b"l/b", b"l/c"):
        put(kv, k, b"v", lease=lid)
    assert kv.Range(etcdrpc.RangeRequest(key=b"l/a"), timeout=10).kvs[0].lease == lid
    t = ttl_of(lease, lid, keys=True)
    header_ok(t.header)
    assert t.ID == lid and t.grantedTTL == 60 and 58 <= t.TTL <= 60
    assert sorted(t.keys) == [b"l/a", b"l/b", b"l/c"]
    assert list(ttl_of(lease, lid).keys) == []
    # Re-put without the lease detaches the key.
    put(kv, b"l/c", b"w")
    assert sorted(ttl_of(lease, lid, keys=True).keys) == [b"l/a", b"l/b"]
    # Unknown lease: TTL -1, not an error.
    u = ttl_of(lease, 0x7777)
    assert (u.ID, u.TTL) == (0x7777, -1)
    before = kv.Range(etcdrpc.RangeRequest(key=b"l/c"), timeout=10).header.revision
    r = lease.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=lid), timeout=10)
    header_ok(r.header)
    # Both keys went in one revision.
    assert r.header.revision == before + 1
    left = kv.Range(etcdrpc.RangeRequest(key=b"l/", range_end=b"l0"), timeout=10)
    assert [x.key for x in left.kvs] == [b"l/c"]
    assert ttl_of(lease, lid).TTL == -1
    assert lid not in {l.ID for l in lease.LeaseLeases(etcdrpc.LeaseLeasesRequest(),
                                                       timeout=10).leases}


def test_keepalive_stream(server):
    lease = lease_stub(server)
    lid = grant(lease, 10).ID
    resps = keepalive_once(lease, [lid, 0x5151, lid])
    assert [(r.ID, r.TTL) for r in resps] == [(lid, 10), (0x5151, 0), (lid, 10)]
    for r in resps:
        header_ok(r.header)


def test_etcdctl_lease_commands(server):
    out = server.ctl_ok("lease", "grant", "40")
    lid = out.split()[1]
    server.ctl_ok("put", "--lease=" + lid, "ck", "v")
    out = server.ctl_ok("lease", "timetolive", "--keys", lid)
    assert "granted with TTL(40s)" in out and "attached keys([ck])" in out, out
    assert lid in server.ctl_ok("lease", "list")
    assert "keepalived with TTL(40)" in server.ctl_ok("lease", "keep-alive", "--once", lid)
    assert "revoked" in server.ctl_ok("lease", "revoke", lid)
    assert server.ctl_ok("get", "ck") == ""
    rc, msg = ctl_error(server, "lease", "revoke", lid)
    assert rc != 0 and NOT_FOUND in msg


def test_revoke_emits_delete_events(server, kv):
    etcd = server.client()
    lease = lease_stub(server)
    lid = grant(lease, 60).ID
    put(kv, b"w/1", b"a", lease=lid)
    put(kv, b"w/2", b"b", lease=lid)
    events, cancel = etcd.watch_prefix(b"w/")
    rev = lease.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=lid), timeout=10).header.revision
    got = []
    for ev in events:
        got.append(ev)
        if len(got) == 2:
            break
    cancel()
    assert [(type(e).__name__, e.key, e.mod_revision) for e in got] == [
        ("DeleteEvent", b"w/1", rev), ("DeleteEvent", b"w/2", rev)]


def test_expiry_within_ttl_plus_one_second(server, kv):
    lease = lease_stub(server)
    lid = grant(lease, 2).ID
    t0 = time.monotonic()
    put(kv, b"exp/a", b"1", lease=lid)
    put(kv, b"exp/b", b"2", lease=lid)
    # Renewing an unknown or live lease does not disturb the expiry of this one.
    deadline = t0 + 2 + 1.0
    while time.monotonic() < deadline + 2:
        n = kv.Range(etcdrpc.RangeRequest(key=b"exp/", range_end=b"exp0"), timeout=10).count
        if n == 0:
            break
        time.sleep(0.05)
    gone_at = time.monotonic()
    assert n == 0, "keys still there"
    assert gone_at - t0 <= 3.0 + 0.3, gone_at - t0  # TTL + 1 s (+ polling slack)
    assert ttl_of(lease, lid).TTL == -1


def test_keepalive_prevents_expiry(server, kv):
    lease = lease_stub(server)
    lid = grant(lease, 2).ID
    put(kv, b"ka/a", b"1", lease=lid)
    stop = threading.Event()

    def reqs():
        while not stop.is_set():
            yield etcdrpc.LeaseKeepAliveRequest(ID=lid)
            stop.wait(0.5)

    it = lease.LeaseKeepAlive(reqs(), timeout=30)
    t_end = time.monotonic() + 4.5
    for r in it:
        assert r.TTL == 2
        if time.monotonic() > t_end:
            break
    assert kv.Range(etcdrpc.RangeRequest(key=b"ka/a"), timeout=10).count == 1
    stop.set()
    it.cancel()


def test_leases_survive_restart(server, kv):
    lease = lease_stub(server)
    lid = grant(lease, 30).ID
    short = grant(lease, 3).ID
    put(kv, b"r/a", b"1", lease=lid)
    put(kv, b"r/s", b"1", lease=short)
    server.restart()
    lease = lease_stub(server)
    kv = server.kv()
    t = ttl_of(lease, lid, keys=True)
    assert t.grantedTTL == 30 and t.TTL >= 25 and list(t.keys) == [b"r/a"]
    # A restarted lease expires again (fresh TTL) and takes its keys along.
    end = time.monotonic() + 3 + 3
    while time.monotonic() < end:
        if kv.Range(etcdrpc.RangeRequest(key=b"r/s"), timeout=10).count == 0:
            break
        time.sleep(0.05)
    assert kv.Range(etcdrpc.RangeRequest(key=b"r/s"), timeout=10).count == 0
    assert kv.Range(etcdrpc.RangeRequest(key=b"r/a"), timeout=10).count == 1
    assert lid in {l.ID for l in lease.LeaseLeases(etcdrpc.LeaseLeasesRequest(),
                                                   timeout=10).leases}

"""Watch: a key, a prefix, a range and from-key; history from an old
revision then live (no gap, no duplicate, by revision); a compacted start
revision; NOPUT/NODELETE filters and prev_kv; cancel; many watches on one
stream; client-chosen and duplicate watch ids; progress requests; etcdctl
watch."""

import queue
import subprocess
import time

import pytest
from etcd3 import etcdrpc

from harness import ETCDCTL, IS_REFERENCE_ETCD_34, header_ok
from watchstream import WatchStream

PUT, DELETE = 0, 1
NOPUT, NODELETE = 0, 1


def put(kv, key, value, lease=0):
    return kv.Put(etcdrpc.PutRequest(key=key, value=value, lease=lease), timeout=10).header.revision


def delete(kv, key, range_end=b""):
    return kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=key, range_end=range_end),
                          timeout=10).header.revision


def summary(evs):
    return [(e.type, e.kv.key, e.kv.value, e.kv.mod_revision) for _, e in evs]


def test_key_prefix_range_and_fromkey(server, kv, ws):
    ws.create(b"k")
    c = ws.created()
    header_ok(c.header)
    k_id = c.watch_id
    ws.create(b"p/", range_end=b"p0")
    p_id = ws.created().watch_id
    ws.create(b"r/b", range_end=b"r/d")
    r_id = ws.created().watch_id
    ws.create(b"z", range_end=b"\0")
    z_id = ws.created().watch_id
    assert len({k_id, p_id, r_id, z_id}) == 4
    revs = {}
    for key in (b"k", b"kk", b"p/1", b"p0", b"r/a", b"r/b", b"r/c", b"r/d", b"zz", b"z"):
        revs[key] = put(kv, key, b"v-" + key)
    d = delete(kv, b"k")
    # k: 2 events; p/: 1; r: 2; z: 2  -> 7 events
    evs, resps = ws.events(7)
    by = {}
    for wid, e in evs:
        by.setdefault(wid, []).append((e.type, e.kv.key, e.kv.mod_revision))
    assert by[k_id] == [(PUT, b"k", revs[b"k"]), (DELETE, b"k", d)]
    assert by[p_id] == [(PUT, b"p/1", revs[b"p/1"])]
    assert by[r_id] == [(PUT, b"r/b", revs[b"r/b"]), (PUT, b"r/c", revs[b"r/c"])]
    assert by[z_id] == [(PUT, b"zz", revs[b"zz"]), (PUT, b"z", revs[b"z"])]
    for r in resps:
        header_ok(r.header)
        assert r.header.revision >= max(e.kv.mod_revision for e in r.events)
    # A PUT event carries the whole key-value; a DELETE only key + revision.
    (_, first), = [x for x in evs if x[1].kv.key == b"k" and x[1].type == PUT]
    assert (first.kv.value, first.kv.version, first.kv.create_revision) == (b"v-k", 1, revs[b"k"])
    (_, dele), = [x for x in evs if x[1].type == DELETE]
    assert (dele.kv.value, dele.kv.version, dele.kv.create_revision) == (b"", 0, 0)


def test_history_then_live_no_gap_no_duplicate(server, kv, ws):
    first = put(kv, b"h/0", b"0")
    for i in range(1, 300):
        put(kv, b"h/%d" % (i % 7), b"%d" % i)
    delete(kv, b"h/3")
    ws.create(b"h/", range_end=b"h0", start_revision=first)
    ws.created()
    # Live writes race with the catch-up on purpose.
    live = [put(kv, b"h/x", b"live%d" % i) for i in range(100)]
    head = live[-1]
    evs, _ = ws.events(head - first + 1)
    revs = [e.kv.mod_revision for _, e in evs]
    assert revs == list(range(first, head + 1)), "gap or duplicate"


def test_one_response_per_revision_when_synced(server, kv, ws):
    ws.create(b"t/", range_end=b"t0")
    ws.created()
    txn = etcdrpc.TxnRequest(success=[
        etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b"t/a", value=b"1")),
        etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b"t/b", value=b"2"))])
    rev = kv.Txn(txn, timeout=10).header.revision
    r = ws.recv()
    assert [(e.kv.key, e.kv.mod_revision) for e in r.events] == [(b"t/a", rev), (b"t/b", rev)]
    assert r.header.revision == rev


def test_compacted_start_revision(server, kv, ws):
    revs = [put(kv, b"c", b"%d" % i) for i in range(5)]
    kv.Compact(etcdrpc.CompactionRequest(revision=revs[3]), timeout=10)
    ws.create(b"c", start_revision=revs[1])
    r = ws.recv()
    if r.created and not r.canceled:
        r = ws.recv()
    assert r.canceled and r.compact_revision == revs[3], r
    # At the compacted revision itself the history is still there.
    ws.create(b"c", start_revision=revs[3])
    ws.created()
    evs, _ = ws.events(2)
    assert [e.kv.mod_revision for _, e in evs] == revs[3:]


def test_filters_and_prev_kv(server, kv, ws):
    put(kv, b"f", b"old")
    ws.create(b"f", filters=[NOPUT])
    noput = ws.created().watch_id
    ws.create(b"f", filters=[NODELETE], prev_kv=True)
    nodel = ws.created().watch_id
    r1 = put(kv, b"f", b"new")
    r2 = delete(kv, b"f")
    evs, _ = ws.events(2)
    got = {wid: e for wid, e in evs}
    assert got[noput].type == DELETE and got[noput].kv.mod_revision == r2
    assert not got[noput].HasField("prev_kv")
    e = got[nodel]
    assert e.type == PUT and e.kv.value == b"new" and e.kv.mod_revision == r1
    assert e.prev_kv.value == b"old" and e.prev_kv.mod_revision == r1 - 1


def test_prev_kv_on_delete_and_from_history(server, kv, ws):
    r0 = put(kv, b"d", b"x")
    r1 = delete(kv, b"d")
    ws.create(b"d", start_revision=r0, prev_kv=True)
    ws.created()
    evs, _ = ws.events(2)
    (_, p), (_, d) = evs
    assert p.type == PUT and not p.HasField("prev_kv")
    assert d.type == DELETE and d.kv.mod_revision == r1 and d.prev_kv.value == b"x"


def test_cancel(server, kv, ws):
    ws.create(b"x")
    wid = ws.created().watch_id
    ws.create(b"y")
    other = ws.created().watch_id
    ws.cancel(wid)
    r = ws.recv()
    assert r.canceled and r.watch_id == wid
    header_ok(r.header)
    put(kv, b"x", b"1")
    ry = put(kv, b"y", b"1")
    r = ws.recv()
    assert r.watch_id == other and r.events[0].kv.mod_revision == ry


def test_half_closed_stream_keeps_watching(server, kv, ws):
    """etcd's Watch ends only with its context: after the client's
    half-close its watchers still send events."""
    ws.create(b"hc")
    ws.created()
    ws.half_close()
    # Half a second in which an ended stream would show (EOFError here):
    # a window, not a synchronisation, as nothing arrives when all is well.
    with pytest.raises(queue.Empty):
        ws.recv(timeout=0.5)
    rev = put(kv, b"hc", b"1")
    evs, _ = ws.events(1)
    assert evs[0][1].kv.mod_revision == rev


def test_many_watches_on_one_stream(server, kv, ws):
    n = 200
    for i in range(n):
        ws.create(b"m/%03d" % i)
    ids = {ws.created().watch_id for _ in range(n)}
    assert len(ids) == n
    ws.create(b"m/", range_end=b"m0")
    all_id = ws.created().watch_id
    revs = [put(kv, b"m/%03d" % i, b"v") for i in range(n)]
    evs, _ = ws.events(2 * n)
    per = {}
    for wid, e in evs:
        per.setdefault(wid, []).append(e.kv.mod_revision)
    assert per.pop(all_id) == revs
    assert sorted(r for v in per.values() for r in v) == revs
    assert all(len(v) == 1 for v in per.values())


def test_client_chosen_and_duplicate_ids(server, kv, ws):
    ws.create(b"a", watch_id=7)
    assert ws.created().watch_id == 7
    ws.create(b"b", watch_id=7)
    r = ws.recv()
    assert r.created and r.canceled
    if not IS_REFERENCE_ETCD_34:
        # etcd 3.5: the duplicate is refused with mvcc's error, id -1.
        assert r.watch_id == -1
        assert r.cancel_reason == "mvcc: duplicate watch ID provided on the WatchStream"
    rev = put(kv, b"a", b"1")
    r = ws.recv()
    assert r.watch_id == 7 and r.events[0].kv.mod_revision == rev


def test_empty_range_is_refused(server, ws):
    ws.create(b"b", range_end=b"a")
    r = ws.recv()
    assert r.created and r.canceled and r.watch_id == -1
    assert r.cancel_reason == "mvcc: watcher range is empty"


def test_progress_request(server, kv, ws):
    ws.create(b"pr")
    ws.created()
    rev = put(kv, b"other", b"1")
    ws.progress()
    r = ws.recv()
    assert not r.events and r.header.revision >= rev
    if not IS_REFERENCE_ETCD_34:
        assert r.watch_id == -1


def test_progress_notify_interval(server_factory):
    args = ["--experimental-watch-progress-notify-interval", "500ms"]
    srv = server_factory(extra_args=args)
    kv = srv.kv()
    s = WatchStream(srv.channel())
    try:
        s.create(b"pn", progress_notify=True)
        wid = s.created().watch_id
        rev = put(kv, b"unrelated", b"1")
        deadline = time.monotonic() + 5
        while True:
            r = s.recv(timeout=max(0.1, deadline - time.monotonic()))
            if not r.events and r.header.revision >= rev:
                break
        assert r.watch_id == wid
    finally:
        s.close()


def test_etcdctl_watch(server, kv):
    r0 = put(kv, b"e/1", b"one")
    put(kv, b"e/2", b"two")
    cmd = [ETCDCTL, "--endpoints", server.client_url, "watch", "--prefix", "--rev=%d" % r0,
           "e/"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})
    try:
        lines = []
        deadline = time.monotonic() + 10
        want = ["PUT", "e/1", "one", "PUT", "e/2", "two", "DELETE", "e/1"]
        # The live delete goes in once the watch is surely past its history.
        while len(lines) < 6 and time.monotonic() < deadline:
            lines.append(p.stdout.readline().strip())
        delete(kv, b"e/1")
        while len(lines) < 8 and time.monotonic() < deadline:
            lines.append(p.stdout.readline().strip())
        assert lines == want
    finally:
        p.kill()
        p.wait()


def test_python_client_watch(server, kv):
    etcd = server.client()
    events, cancel = etcd.watch(b"pyw")
    rev = put(kv, b"pyw", b"1")
    ev = next(iter(events))
    cancel()
    assert ev.key == b"pyw" and ev.mod_revision == rev

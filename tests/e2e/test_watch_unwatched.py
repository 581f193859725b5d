"""Writes that no watcher's range holds: the watch hub passes those
revisions without reading them (the built-in controllers always watch
/_meta/, so every server has a watcher). What a user sees must not change:
a watcher created later with an older start revision still gets every
event from there, a synced watcher still gets one response per revision,
and a physical compaction still completes."""

from etcd3 import etcdrpc


def put(kv, key, value=b"v"):
    return kv.Put(etcdrpc.PutRequest(key=key, value=value), timeout=10).header.revision


def test_later_watcher_reads_skipped_revisions(kv, ws):
    ws.create(b"w/", range_end=b"w0")
    wid = ws.created().watch_id
    revs = [put(kv, b"u/%03d" % i, b"%d" % i) for i in range(200)]
    watched = put(kv, b"w/1")
    r = ws.recv()
    assert r.watch_id == wid
    assert [(e.kv.key, e.kv.mod_revision) for e in r.events] == [(b"w/1", watched)]
    assert r.header.revision >= watched
    # Every skipped revision, in order, for watchers that start in them.
    ws.create(b"u/", range_end=b"u0", start_revision=revs[0])
    ws.created()
    evs, _ = ws.events(200)
    assert [(e.kv.key, e.kv.mod_revision) for _, e in evs] == \
        [(b"u/%03d" % i, revs[i]) for i in range(200)]
    ws.create(b"u/150", start_revision=revs[120])
    ws.created()
    evs, _ = ws.events(1)
    assert [(e.kv.value, e.kv.mod_revision) for _, e in evs] == [(b"150", revs[150])]


def test_synced_watcher_after_skips_gets_one_response_per_revision(kv, ws):
    ws.create(b"t/", range_end=b"t0")
    ws.created()
    for i in range(300):  # far more than a lagging watcher's batch threshold
        put(kv, b"other/%d" % i)
    txn = etcdrpc.TxnRequest(success=[
        etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b"t/a", value=b"1")),
        etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b"t/b", value=b"2"))])
    rev = kv.Txn(txn, timeout=10).header.revision
    rev2 = put(kv, b"t/c")
    first, second = ws.recv(), ws.recv()
    assert [(e.kv.key, e.kv.mod_revision) for e in first.events] == \
        [(b"t/a", rev), (b"t/b", rev)]
    assert [(e.kv.key, e.kv.mod_revision) for e in second.events] == [(b"t/c", rev2)]


def test_physical_compaction_completes_past_skipped_revisions(kv, ws):
    ws.create(b"w/", range_end=b"w0")
    ws.created()
    revs = [put(kv, b"c/%d" % i) for i in range(50)]
    # The compactor waits for the hub to pass the revision: a hub that
    # slept through unwatched writes must still get there.
    kv.Compact(etcdrpc.CompactionRequest(revision=revs[-1], physical=True), timeout=10)
    ws.create(b"c/", range_end=b"c0", start_revision=revs[10])
    r = ws.recv()
    if r.created and not r.canceled:
        r = ws.recv()
    assert r.canceled and r.compact_revision == revs[-1], r
    watched = put(kv, b"w/x")
    evs, _ = ws.events(1)
    assert [(e.kv.key, e.kv.mod_revision) for _, e in evs] == [(b"w/x", watched)]

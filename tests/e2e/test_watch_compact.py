"""Compaction never cancels a watcher that is in sync: many watchers on a
prefix, writers putting keys and a client compacting at the latest revision
in a tight loop; every watcher sees every put, in order, and none is
canceled. etcd cancels only watchers whose next revision is below the
compaction (an old start_revision, or a client so slow that its watchers
fell behind), so the values are small and the readers keep up.

Before the fix, a Compact applied before the watch hub had read the newest
revisions made the hub's read fail and cancelled synced watchers."""

import threading
import time

import grpc
from etcd3 import etcdrpc

from watchstream import WatchStream

STREAMS = 8
WATCHERS_PER_STREAM = 5
SECONDS = 8.0   # the race it guards against shows about once every 2-4 s here
MAX_REVS = 6000  # the readers parse 40 responses per revision: bound the drain
WRITERS = 3
COMPACTORS = 2


def test_compaction_does_not_cancel_synced_watchers(server):
    streams = [WatchStream(server.channel()) for _ in range(STREAMS)]
    ids = []
    for s in streams:
        mine = []
        for _ in range(WATCHERS_PER_STREAM):
            s.create(b"wc/", range_end=b"wc0")
            mine.append(s.created().watch_id)
        ids.append(mine)

    stop = threading.Event()
    revs, errors = [], []
    lock = threading.Lock()

    def writer(n):
        kv = server.kv()
        try:
            i = 0
            while not stop.is_set():
                r = kv.Put(etcdrpc.PutRequest(key=b"wc/%d/%d" % (n, i % 8), value=b"v%d" % i),
                           timeout=10).header.revision
                with lock:
                    revs.append(r)
                    if len(revs) >= MAX_REVS:
                        stop.set()
                i += 1
        except Exception as e:  # reported below
            errors.append(e)

    compactions = [0]

    def compactor(n):
        kv = server.kv()
        try:
            while not stop.is_set():
                # Its own put makes the latest revision known at once.
                rev = kv.Put(etcdrpc.PutRequest(key=b"wc/c%d" % n, value=b"c"),
                             timeout=10).header.revision
                with lock:
                    revs.append(rev)
                try:
                    kv.Compact(etcdrpc.CompactionRequest(revision=rev), timeout=10)
                    compactions[0] += 1
                except grpc.RpcError as e:
                    # Another compaction got to this revision first.
                    if e.code() != grpc.StatusCode.OUT_OF_RANGE:
                        raise
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    threads += [threading.Thread(target=compactor, args=(n,)) for n in range(COMPACTORS)]
    for t in threads:
        t.start()
    stop.wait(SECONDS)  # load duration, not synchronisation
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert compactions[0] > 10, compactions[0]
    want = sorted(revs)
    assert want

    # Every watcher owes exactly the put revisions, in order; poll each stream
    # until all its watchers reached the last one, against a deadline.
    end = time.monotonic() + 120
    for s, mine in zip(streams, ids):
        got = {wid: [] for wid in mine}
        while any(not g or g[-1] < want[-1] for g in got.values()):
            r = s.recv(timeout=max(0.1, end - time.monotonic()))
            assert not r.canceled, "watcher %d canceled: %s" % (r.watch_id, r)
            assert r.watch_id in got, r
            got[r.watch_id].extend(e.kv.mod_revision for e in r.events)
        for wid, g in got.items():
            assert g == want, "watcher %d: %d events, want %d; first difference at %r" % (
                wid, len(g), len(want),
                next(((a, b) for a, b in zip(g, want) if a != b), None))
    for s in streams:
        s.close()

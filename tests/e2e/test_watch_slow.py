"""A watcher whose client stops reading while 100,000 events are written:
the server must not buffer them (its RSS stays within a bound, compared with
the same load and a reader that keeps up), and once the client reads again it
receives every event exactly once, in order (the watcher fell behind and
caught up from the store)."""

import threading
import time

from etcd3 import etcdrpc

from harness import IS_REFERENCE_ETCD, SANITIZED
from watchstream import WatchStream

EVENTS = 100_000
PER_TXN = 10                 # 10 puts per revision: 10,000 revisions
VALUE = b"v" * 1024
WRITERS = 8
# What metad may hold for a stalled stream: its send queue (--watch-queue-bytes,
# 1 MiB), the part of the hub's ring it may pin (4 MiB) and allocator slack
# (measured: 6-13 MiB more than with a reader keeping up). A server that
# buffered the 100,000 events would hold more than 100 MiB.
BOUND = 64 << 20


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def write_all(kv, pid, peak):
    """Write EVENTS events from WRITERS threads; sample RSS meanwhile."""
    n_txns = EVENTS // PER_TXN
    nxt = iter(range(n_txns))
    lock = threading.Lock()
    errors = []

    def writer():
        try:
            while True:
                with lock:
                    t = next(nxt, None)
                if t is None:
                    return
                ops = [etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
                    key=b"s/%05d/%d" % (t, i), value=VALUE)) for i in range(PER_TXN)]
                kv.Txn(etcdrpc.TxnRequest(success=ops), timeout=30)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak[0] = max(peak[0], rss(pid))
        threads[0].join(0.05)
    for t in threads:
        t.join()
    assert not errors, errors[0]
    peak[0] = max(peak[0], rss(pid))


def drain(ws, first_rev, deadline_s=120):
    """Read until EVENTS events arrived; check order and uniqueness."""
    seen = 0
    last = (first_rev - 1, b"")
    end = time.monotonic() + deadline_s
    while seen < EVENTS:
        r = ws.recv(timeout=max(0.1, end - time.monotonic()))
        for e in r.events:
            cur = (e.kv.mod_revision, e.kv.key)
            assert cur > last, "out of order or duplicate: %r after %r" % (cur, last)
            assert e.kv.value == VALUE
            last = cur
            seen += 1
    return last


def run(server_factory, stall):
    srv = server_factory()
    kv = srv.kv()
    pid = srv.proc.pid
    ws = WatchStream(srv.new_channel(options=[("grpc.max_receive_message_length", 64 << 20)]),
                     timeout=600)
    try:
        first = kv.Put(etcdrpc.PutRequest(key=b"mark", value=b""), timeout=10).header.revision + 1
        ws.create(b"s/", range_end=b"s0")
        ws.created()
        base = rss(pid)
        peak = [base]
        if stall:
            # The client stops reading while everything is written.
            ws.pause()
            write_all(kv, pid, peak)
            ws.resume()
            last = drain(ws, first)
        else:
            box = {}
            t = threading.Thread(target=lambda: box.setdefault("last", drain(ws, first)))
            t.start()
            write_all(kv, pid, peak)
            t.join(180)
            last = box["last"]
        assert last[0] == first + EVENTS // PER_TXN - 1
        return peak[0] - base
    finally:
        ws.close()


def test_stalled_reader_bounded_memory_and_exact_catch_up(server_factory):
    control = run(server_factory, stall=False)
    stalled = run(server_factory, stall=True)
    print("RSS growth: reader keeping up %.1f MiB, stalled reader %.1f MiB"
          % (control / 2**20, stalled / 2**20))
    if not IS_REFERENCE_ETCD and not SANITIZED:
        assert stalled - control < BOUND, (stalled, control)

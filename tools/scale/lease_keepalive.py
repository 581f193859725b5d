#!/usr/bin/python3
"""Scale check: N leases kept alive by ONE client over ONE LeaseKeepAlive
stream, each renewed once per PERIOD seconds, for DURATION seconds; then
checks no lease expired (every keep-alive answered with TTL > 0 and
LeaseLeases still lists all N). Prints the figures.

usage: lease_keepalive.py HOST:PORT [--leases 100000] [--ttl 15] [--period 5]
                          [--duration 30] [--pid PID]   (PID: report the server's RSS)
"""

import argparse
import queue
import threading
import time

import grpc
from etcd3 import etcdrpc


def rss(pid):
    if not pid:
        return 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def renewed(raw):
    """Whether a packed LeaseKeepAliveResponse has TTL > 0: TTL (field 3, a
    varint, the last field) is absent when 0. Checked on the bytes: decoding
    every message would make this client, not the server, the limit."""
    return len(raw) >= 2 and raw[-2] == 0x18 and raw[-1] != 0 or \
        etcdrpc.LeaseKeepAliveResponse.FromString(raw).TTL > 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--leases", type=int, default=100000)
    ap.add_argument("--ttl", type=int, default=15)
    ap.add_argument("--period", type=float, default=5.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--pid", type=int, default=0)
    a = ap.parse_args()

    ch = grpc.insecure_channel(a.target)
    lease = etcdrpc.LeaseStub(ch)
    rss0 = rss(a.pid)
    t0 = time.monotonic()
    ids, window = [], []
    for i in range(a.leases):
        window.append(lease.LeaseGrant.future(etcdrpc.LeaseGrantRequest(TTL=a.ttl), timeout=60))
        if len(window) >= 1000:
            ids += [f.result().ID for f in window]
            window = []
    ids += [f.result().ID for f in window]
    grant_s = time.monotonic() - t0
    print("granted %d leases (TTL %d s) in %.1f s (%.0f/s); server RSS +%.1f MiB"
          % (len(ids), a.ttl, grant_s, len(ids) / grant_s, (rss(a.pid) - rss0) / 2**20))

    stop = threading.Event()
    sent = [0]

    def requests():
        # Round-robin over the leases: each renewed once per period.
        per_s = len(ids) / a.period
        start = time.monotonic()
        i = 0
        while not stop.is_set():
            due = start + i / per_s
            now = time.monotonic()
            if due > now:
                time.sleep(min(due - now, 0.05))
                continue
            yield reqs[i % len(ids)]
            i += 1
            sent[0] = i

    # Requests are packed once: the Python client, not the server, is the
    # limit on keep-alives per second.
    reqs = [b"\x08" + varint(i) for i in ids]
    ka = ch.stream_stream("/etcdserverpb.Lease/LeaseKeepAlive",
                          request_serializer=lambda b: b, response_deserializer=lambda b: b)
    resps = ka(requests(), timeout=a.duration + 120)
    got = expired = 0
    late = 0.0
    t1 = time.monotonic()
    for r in resps:
        got += 1
        if not renewed(r):
            expired += 1
        if time.monotonic() - t1 >= a.duration:
            stop.set()
            break
    elapsed = time.monotonic() - t1
    resps.cancel()
    behind = sent[0] - got
    alive = len(lease.LeaseLeases(etcdrpc.LeaseLeasesRequest(), timeout=60).leases)
    print("keep-alive: %d sent, %d answered in %.1f s (%.0f/s, target %.0f/s), "
          "%d answered TTL<=0, %d unanswered at the end"
          % (sent[0], got, elapsed, got / elapsed, len(ids) / a.period, expired, behind))
    print("leases alive at the end: %d of %d; server RSS +%.1f MiB over start"
          % (alive, len(ids), (rss(a.pid) - rss0) / 2**20))
    ok = expired == 0 and alive == len(ids)
    print("RESULT: %s" % ("no lease expired" if ok else "LEASES EXPIRED"))
    del late
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/python3
"""Scale check: memory per idle watcher. Opens STREAMS Watch streams with
WATCHERS watchers each (all on one prefix), waits for every `created`, and
reports the server's RSS growth per watcher (read from /proc/PID/status).

usage: watch_idle_memory.py HOST:PORT PID [--streams 100] [--watchers 1000]
"""

import argparse
import queue
import threading
import time

import grpc
from etcd3 import etcdrpc


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("pid", type=int)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--watchers", type=int, default=1000)
    ap.add_argument("--prefix", default="/scale/")
    a = ap.parse_args()
    ch = grpc.insecure_channel(a.target)
    end = a.prefix[:-1] + chr(ord(a.prefix[-1]) + 1)
    create = etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
        key=a.prefix.encode(), range_end=end.encode())).SerializeToString()
    method = ch.stream_stream("/etcdserverpb.Watch/Watch", request_serializer=lambda b: b,
                              response_deserializer=etcdrpc.WatchResponse.FromString)
    # Warm up the connection and one stream so the baseline includes them.
    hold = threading.Event()

    def one():
        yield create
        hold.wait()

    warm = method(one(), timeout=600)
    next(warm)
    time.sleep(0.5)
    base = rss(a.pid)
    created = queue.Queue()
    calls = []

    def reader(call):
        n = 0
        try:
            for r in call:
                if r.created:
                    n += 1
                    if n == a.watchers:
                        created.put(1)
        except grpc.RpcError:
            pass  # cancelled at the end

    stop = threading.Event()

    def reqs():
        for _ in range(a.watchers):
            yield create
        stop.wait()

    t0 = time.monotonic()
    for _ in range(a.streams):
        c = method(reqs(), timeout=600)
        calls.append(c)
        threading.Thread(target=reader, args=(c,), daemon=True).start()
    for _ in range(a.streams):
        created.get(timeout=300)
    took = time.monotonic() - t0
    time.sleep(1.0)
    grown = rss(a.pid) - base
    total = a.streams * a.watchers
    print("%d idle watchers (%d streams x %d) created in %.1f s; server RSS +%.1f MiB "
          "= %.0f bytes per watcher (stream overhead included)"
          % (total, a.streams, a.watchers, took, grown / 2**20, grown / total))
    stop.set()
    hold.set()
    for c in calls:
        c.cancel()
    warm.cancel()


if __name__ == "__main__":
    main()

"""Helpers for the controllers' end-to-end tests: nodes (brokers, storage
nodes) as plain python3-etcd3 clients following docs/controllers.md, and a
deadline poll."""

import json
import threading
import time

NODES = "/_meta/nodes/"


def wait_for(fn, deadline, what):
    """Poll fn() until it returns something truthy or the deadline passes."""
    end = time.monotonic() + deadline
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                                 % (deadline, what, v))
        time.sleep(0.02)   # poll interval


def get_json(etcd, key):
    v, meta = etcd.get(key)
    return (json.loads(v), meta) if v is not None else (None, None)


def seg_key(ns, shard, n):
    return "/_meta/journal/segments/%s/%s/%010d" % (ns, shard, n)


def segment(etcd, ns, shard, n):
    return get_json(etcd, seg_key(ns, shard, n))[0]


class Node:
    """A node registered under its own lease; keep_alive() runs a keep-alive
    thread until stop() (a clean stop revokes) or die() (the lease is left
    to expire)."""

    def __init__(self, etcd, kind, node_id, ttl=2):
        self.etcd, self.kind, self.id, self.ttl = etcd, kind, node_id, ttl
        self.key = NODES + "%s/%s" % (kind, node_id)
        self.lease = etcd.lease(ttl)
        etcd.put(self.key, json.dumps({"addr": "127.0.0.1:0"}), lease=self.lease)
        self.epoch = etcd.get(self.key)[1].create_revision
        self._stop = threading.Event()
        self._thread = None
        self.last_keepalive = time.monotonic()

    def keep_alive(self):
        def run():
            while not self._stop.wait(self.ttl / 4.0):
                try:
                    self.lease.refresh()
                    self.last_keepalive = time.monotonic()
                except Exception:
                    return
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def die(self):
        """Stop keeping alive (a crash): the lease expires after its TTL."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.last_keepalive

    def stop(self):
        self.die()
        self.lease.revoke()

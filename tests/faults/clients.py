"""The clients of a fault run: writers, linearizable readers and watchers,
each a thread with its own seeded random choices, recording every operation
through history.Recorder.

Every key lives under "f/<client>/"; every value is unique, so the checker can
tell which request a stored value came from. Errors are recorded as "unknown"
(deadline exceeded: the request may have been applied) or "fail" (any other
error). etcd does not promise that a failed write was not applied either
(e.g. "request timed out", "leader changed"), so the checker treats both as
indeterminate; only acknowledged results are held to account.
"""

import os
import queue
import random
import sys
import threading
import time

import grpc
from etcd3 import etcdrpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import watchstream  # noqa: E402

import history  # noqa: E402
from history import prefix_end  # noqa: E402

# A self-test of the whole pipeline: serializable reads are served from a
# member's local state and may be stale under partitions, and the checker
# must then report stale reads (FAULT_SERIALIZABLE_READS=1 make faults).
SERIALIZABLE_READS = os.environ.get("FAULT_SERIALIZABLE_READS") == "1"
WRITE_TIMEOUT = 4.0     # > election timeout + a round, so a leader change can complete
READ_TIMEOUT = 3.0
# Channels reconnect quickly to a restarted member (gRPC's default back-off
# grows to minutes).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 500)]


def _status(err):
    return "unknown" if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED else "fail"


def _err_text(err):
    return "%s: %s" % (err.code().name, err.details())


class Shared:
    """What clients learn from each other: acknowledged keys, for readers."""

    def __init__(self):
        self.mu = threading.Lock()
        self.acked = []          # keys of acknowledged puts, in ack order
        self.stop = threading.Event()


class Client(threading.Thread):
    def __init__(self, name, members, rec, shared, seed):
        super().__init__(daemon=True, name=name)
        self.cname = name
        self.members = members
        self.rec = rec
        self.shared = shared
        self.rng = random.Random("%s/%s" % (seed, name))
        self._channels = {}
        self.error = None

    def stub(self, cls, m):
        ch = self._channels.get(m.name)
        if ch is None:
            ch = m.new_channel(CHANNEL_OPTIONS)
            self._channels[m.name] = ch
        return cls(ch)

    def run(self):
        try:
            self.loop()
        except Exception as e:  # a client bug must not pass silently as a clean run
            self.error = repr(e)
            raise
        finally:
            for ch in self._channels.values():
                ch.close()

    def pace(self, lo, hi):
        # Paces the load (keeps the 2-core machine modestly loaded); not a sync.
        self.shared.stop.wait(self.rng.uniform(lo, hi))


class Writer(Client):
    """Puts of unique keys; sometimes a Txn putting two keys at once, or a
    delete of one of its own acknowledged keys."""

    def loop(self):
        n = 0
        mine = []
        while not self.shared.stop.is_set():
            m = self.rng.choice(self.members)
            kv = self.stub(etcdrpc.KVStub, m)
            roll = self.rng.random()
            rec = {"proc": self.cname, "member": m.name}
            if roll < 0.08 and mine:
                key = mine.pop(self.rng.randrange(len(mine)))
                rec.update(type="delete", key=key)
                req = etcdrpc.DeleteRangeRequest(key=key.encode())
                call = kv.DeleteRange
            elif roll < 0.18:
                keys = ["f/%s/%06d" % (self.cname, n), "f/%s/%06d" % (self.cname, n + 1)]
                vals = ["%s.%d" % (self.cname, n), "%s.%d" % (self.cname, n + 1)]
                n += 2
                rec.update(type="txn", keys=keys, values=vals)
                req = etcdrpc.TxnRequest(
                    compare=[etcdrpc.Compare(key=keys[0].encode(),
                                             result=etcdrpc.Compare.EQUAL,
                                             target=etcdrpc.Compare.VERSION, version=0)],
                    success=[etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
                        key=k.encode(), value=v.encode())) for k, v in zip(keys, vals)])
                call = kv.Txn
            else:
                key, val = "f/%s/%06d" % (self.cname, n), "%s.%d" % (self.cname, n)
                n += 1
                rec.update(type="put", key=key, value=val)
                req = etcdrpc.PutRequest(key=key.encode(), value=val.encode())
                call = kv.Put
            rec["invoke"] = self.rec.now()
            try:
                r = call(req, timeout=WRITE_TIMEOUT)
                rec.update(complete=self.rec.now(), status="ok", rev=r.header.revision)
                if rec["type"] == "delete":
                    rec["deleted"] = r.deleted
                elif rec["type"] == "txn":
                    rec["succeeded"] = r.succeeded
                    if r.succeeded:
                        mine.extend(rec["keys"])
                        with self.shared.mu:
                            self.shared.acked.extend(rec["keys"])
                else:
                    mine.append(rec["key"])
                    with self.shared.mu:
                        self.shared.acked.append(rec["key"])
            except grpc.RpcError as e:
                rec.update(complete=self.rec.now(), status=_status(e), error=_err_text(e))
            self.rec.write(rec)
            self.pace(0.01, 0.04)


class Reader(Client):
    """Linearizable Range on random members: mostly the key acknowledged
    last (a read racing the write's acknowledgement), sometimes any
    acknowledged key, sometimes a whole writer prefix."""

    def __init__(self, *a, writers=(), **kw):
        super().__init__(*a, **kw)
        self.writers = list(writers)

    def loop(self):
        while not self.shared.stop.is_set():
            with self.shared.mu:
                acked = len(self.shared.acked)
                last = self.shared.acked[-1] if acked else None
                anyk = self.shared.acked[self.rng.randrange(acked)] if acked else None
            roll = self.rng.random()
            if roll < 0.12 or last is None:
                key = "f/%s/" % self.rng.choice(self.writers)
                end = prefix_end(key)
            elif roll < 0.4:
                key, end = anyk, ""
            else:
                key, end = last, ""
            m = self.rng.choice(self.members)
            kv = self.stub(etcdrpc.KVStub, m)
            rec = {"type": "read", "proc": self.cname, "member": m.name, "key": key,
                   "range_end": end, "invoke": self.rec.now()}
            try:
                r = kv.Range(etcdrpc.RangeRequest(key=key.encode(), range_end=end.encode(),
                                                  serializable=SERIALIZABLE_READS),
                             timeout=READ_TIMEOUT)
                rec.update(complete=self.rec.now(), status="ok", rev=r.header.revision,
                           kvs=[[x.key.decode(), x.value.decode(), x.mod_revision]
                                for x in r.kvs])
            except grpc.RpcError as e:
                rec.update(complete=self.rec.now(), status=_status(e), error=_err_text(e))
            self.rec.write(rec)
            self.pace(0.01, 0.04)


class Watcher(Client):
    """Watches a prefix from start_rev, moving to another random member every
    few seconds and after any error, each time from the last revision seen
    + 1. Stops after the run once it has seen target_rev (the fence)."""

    def __init__(self, *a, prefix="f/", start_rev=1, **kw):
        super().__init__(*a, **kw)
        self.prefix = prefix
        self.next_rev = start_rev
        self.target_rev = None          # set by the run after the fence write
        self.hard_stop = threading.Event()

    def done(self):
        return self.hard_stop.is_set() or (
            self.target_rev is not None and self.next_rev > self.target_rev)

    def loop(self):
        while not self.done():
            m = self.rng.choice(self.members)
            ch = m.new_channel(CHANNEL_OPTIONS)
            ws = watchstream.WatchStream(ch, timeout=600)
            self.rec.write({"type": "watch_start", "proc": self.cname, "member": m.name,
                            "prefix": self.prefix, "start_rev": self.next_rev,
                            "t": self.rec.now()})
            ws.create(self.prefix.encode(), prefix_end(self.prefix).encode(),
                      start_revision=self.next_rev)
            switch_at = time.monotonic() + self.rng.uniform(2.0, 6.0)
            reason = "switch"
            try:
                while not self.done():
                    if time.monotonic() > switch_at:
                        break
                    try:
                        r = ws.recv(timeout=0.2)
                    except queue.Empty:
                        continue
                    if r.canceled:
                        reason = "canceled: %s (compact_revision %d)" % (
                            r.cancel_reason, r.compact_revision)
                        self.rec.write({"type": "watch_cancel", "proc": self.cname,
                                        "member": m.name, "reason": reason,
                                        "t": self.rec.now()})
                        break
                    if r.events:
                        evs = [history.event(e) for e in r.events]
                        self.rec.write({"type": "watch_events", "proc": self.cname,
                                        "member": m.name, "events": evs,
                                        "t": self.rec.now()})
                        self.next_rev = evs[-1][0] + 1
            except (EOFError, grpc.RpcError) as e:
                reason = "error: %r" % (e,)
            finally:
                ws.close()
                ch.close()
            self.rec.write({"type": "watch_end", "proc": self.cname, "member": m.name,
                            "reason": reason, "t": self.rec.now()})

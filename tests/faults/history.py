"""The recorded history of one fault run: JSON lines, one record per
operation (with invoke and complete times), watch batch, fault and final
observation. The checker reads only this file, so a failed run can be checked
again, and doctored histories can be fed to it.

Times are seconds on the monotonic clock since the run started (the "meta"
record carries the wall-clock time of that start): real-time order between
operations is what the checker needs, and the monotonic clock cannot step.
"""

import json
import threading
import time

from etcd3.etcdrpc import kv_pb2


def event(e):
    """A watch event (mvccpb.Event) as it is recorded: [rev, kind, key, value]."""
    return [e.kv.mod_revision, "del" if e.type == kv_pb2.Event.DELETE else "put",
            e.kv.key.decode(), e.kv.value.decode()]


class Recorder:
    def __init__(self, path):
        self.path = path
        self.mu = threading.Lock()
        self.f = open(path, "w")
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        self.counts = {}

    def now(self):
        return round(time.monotonic() - self.t0, 6)

    def write(self, rec):
        line = json.dumps(rec, separators=(",", ":"))
        with self.mu:
            self.f.write(line + "\n")
            self.counts[rec["type"]] = self.counts.get(rec["type"], 0) + 1

    def close(self):
        with self.mu:
            self.f.close()


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def prefix_end(prefix):
    """etcd's range_end for a prefix: the prefix with its last byte + 1."""
    b = bytearray(prefix.encode())
    while b and b[-1] == 0xFF:
        b.pop()
    b[-1] += 1
    return b.decode()

"""A raw etcd Watch stream for tests: send WatchRequests, read WatchResponses
with a deadline (a reader thread feeds a queue; nothing sleeps to sync).

python3-etcd3 0.12's messages predate watch_id, fragment and progress
requests (etcd 3.4 fields), so requests are sent as bytes and those fields are
appended in protobuf wire format by hand."""

import queue
import threading

from etcd3 import etcdrpc

_END = object()


def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


class WatchStream:
    def __init__(self, channel, timeout=120):
        self._reqs = queue.Queue()
        self._resps = queue.Queue()
        method = channel.stream_stream("/etcdserverpb.Watch/Watch",
                                       request_serializer=lambda b: b,
                                       response_deserializer=etcdrpc.WatchResponse.FromString)
        self._call = method(self._gen(), timeout=timeout)
        self._go = threading.Event()     # cleared: the client stops reading
        self._go.set()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _gen(self):
        while True:
            r = self._reqs.get()
            if r is _END:
                return
            yield r

    def _read(self):
        try:
            while True:
                self._go.wait()
                r = next(self._call, _END)
                if r is _END:
                    break
                self._resps.put(r)
                if not self._go.is_set():
                    self._paused.set()
        except Exception as e:  # the call ended: hand the error to the reader
            self._resps.put(e)
        self._resps.put(_END)

    def pause(self):
        """Stop reading from the transport (after the message being read)."""
        self._paused = threading.Event()
        self._go.clear()

    def resume(self):
        self._go.set()

    def send(self, req):
        self._reqs.put(req if isinstance(req, bytes) else req.SerializeToString())

    def create(self, key, range_end=b"", start_revision=0, watch_id=0, prev_kv=False,
               filters=(), progress_notify=False, fragment=False):
        body = etcdrpc.WatchCreateRequest(
            key=key, range_end=range_end, start_revision=start_revision, prev_kv=prev_kv,
            filters=list(filters), progress_notify=progress_notify).SerializeToString()
        if watch_id:
            body += b"\x38" + varint(watch_id)       # field 7, varint
        if fragment:
            body += b"\x40\x01"                      # field 8, true
        self.send(b"\x0a" + varint(len(body)) + body)  # WatchRequest.create_request (1)

    def cancel(self, watch_id):
        self.send(etcdrpc.WatchRequest(cancel_request=etcdrpc.WatchCancelRequest(
            watch_id=watch_id)))

    def progress(self):
        self.send(b"\x1a\x00")                        # WatchRequest.progress_request (3)

    def recv(self, timeout=10):
        r = self._resps.get(timeout=timeout)
        if r is _END:
            raise EOFError("watch stream ended")
        if isinstance(r, Exception):
            raise r
        return r

    def created(self, timeout=10):
        r = self.recv(timeout)
        assert r.created, r
        return r

    def events(self, n, timeout=20):
        """Read responses until n events arrived; returns (events, responses)."""
        evs, resps = [], []
        while len(evs) < n:
            r = self.recv(timeout)
            resps.append(r)
            evs.extend((r.watch_id, e) for e in r.events)
        return evs, resps

    def half_close(self):
        """No more requests (the client's END_STREAM); the call goes on."""
        self._reqs.put(_END)

    def close(self):
        self._reqs.put(_END)
        self._call.cancel()

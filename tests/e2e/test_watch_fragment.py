"""Watch fragments (WatchCreateRequest.fragment, etcd 3.4+): a response
bigger than the server's limit, --max-request-bytes + 512 KiB, is split into
several WatchResponses, all but the last with fragment=true. The client
reassembles them: every event once, in order. The split follows etcd's
sendFragments: each piece takes events while the whole piece (header and
flags included) stays below the limit, and a watcher that did not ask for
fragments gets the response whole."""

import pytest
from etcd3 import etcdrpc

from watchstream import WatchStream

MAX_REQUEST_BYTES = 64 * 1024
LIMIT = MAX_REQUEST_BYTES + 512 * 1024  # etcd's MaxRequestBytesWithOverhead
KEYS = 3000
BATCH = 50                               # puts per txn, under MAX_REQUEST_BYTES


def _varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def fragment_flag(r):
    """WatchResponse.fragment (field 7). python3-etcd3 0.12's message predates
    it, so it is an unknown field there: read it from the wire form."""
    b, i, flag = r.SerializeToString(), 0, False
    while i < len(b):
        key, i = _varint(b, i)
        if key & 7 == 0:
            v, i = _varint(b, i)
            if key >> 3 == 7:
                flag = v != 0
        elif key & 7 == 2:
            n, i = _varint(b, i)
            i += n
        else:
            raise AssertionError("unexpected wire type in %r" % b[:64])
    return flag


def varint_len(v):
    n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


@pytest.fixture
def server(server_factory):
    return server_factory(extra_args=["--max-request-bytes", str(MAX_REQUEST_BYTES)])


def value(i):
    # Sizes vary so piece boundaries do not fall on a pattern.
    return b"%05d" % i + b"v" * (700 + (i * 37) % 600)


def test_fragmented_watch_response(server):
    kv = server.kv()
    keys = [b"fr/%05d" % i for i in range(KEYS)]
    for at in range(0, KEYS, BATCH):
        ops = [etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=k, value=value(at + j)))
               for j, k in enumerate(keys[at:at + BATCH])]
        kv.Txn(etcdrpc.TxnRequest(success=ops), timeout=10)

    frag = WatchStream(server.channel())
    frag.create(b"fr/", range_end=b"fr0", prev_kv=True, fragment=True)
    fid = frag.created().watch_id
    whole = WatchStream(server.channel())
    whole.create(b"fr/", range_end=b"fr0", prev_kv=True)
    whole.created()

    # One revision whose events (each with its prev_kv) exceed the limit.
    rev = kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"fr/", range_end=b"fr0"),
                         timeout=10).header.revision

    pieces = []
    while not pieces or fragment_flag(pieces[-1]):
        r = frag.recv(timeout=30)
        assert r.watch_id == fid and not r.canceled, r
        pieces.append(r)
    assert len(pieces) > 1
    events = [e for p in pieces for e in p.events]
    assert [e.kv.key for e in events] == keys
    assert all(e.type == 1 and e.kv.mod_revision == rev for e in events)
    assert [e.prev_kv.value for e in events] == [value(i) for i in range(KEYS)]
    assert {p.header.revision for p in pieces} == {rev}

    for n, p in enumerate(pieces):
        last = n == len(pieces) - 1
        # Measured with fragment=true, as etcd sizes every piece.
        size = p.ByteSize() + (2 if last else 0)
        if len(p.events) > 1:
            assert size < LIMIT, (n, size)
        if not last:
            nxt = pieces[n + 1].events[0].ByteSize()
            grown = size + 1 + varint_len(nxt) + nxt
            assert grown >= LIMIT, "piece %d (%d events, %d bytes) could take one more" % (
                n, len(p.events), size)

    # Without fragment the same revision comes in one response.
    r = whole.recv(timeout=30)
    assert not fragment_flag(r)
    assert [e.kv.key for e in r.events] == keys
    assert r.ByteSize() >= LIMIT
    frag.close()
    whole.close()

"""Bad input: empty keys, future revisions, oversized requests (--max-request-bytes
and the gRPC receive limit), malformed protobuf, unknown methods, a client port
already taken. Every case checks the gRPC status code and etcd's message (or
exit status), and that the server keeps serving with its data intact."""

import re
import socket
import subprocess

import grpc
import pytest
from etcd3 import etcdrpc

import harness
from harness import ctl_error, free_port, rpc_error

EMPTY_KEY = (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided")
TOO_LARGE = (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large")
FUTURE = (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")
UNMARSHAL = "grpc: error unmarshalling request: "
KiB, MiB = 1024, 1024 * 1024
DEFAULT_MAX_REQUEST = 1536 * KiB
GRPC_SLACK = 512 * KiB     # etcd's gRPC receive limit is max-request-bytes + 512 KiB


def P(key, value=b"v", **kw):
    return etcdrpc.PutRequest(key=key, value=value, **kw)


def seed(kv):
    """Write some data; return (revision, snapshot of every key) for later checks."""
    for i in range(5):
        kv.Put(P(b"keep/%d" % i, b"value-%d" % i), timeout=10)
    return snapshot(kv)


def snapshot(kv):
    r = kv.Range(etcdrpc.RangeRequest(key=b"\0", range_end=b"\0"), timeout=10)
    return r.header.revision, [(x.key, x.value, x.mod_revision, x.version) for x in r.kvs]


def assert_received_too_large(code, msg, limit):
    """gRPC's own receive limit. etcd (grpc-go) says 'grpc: received message larger
    than max (N vs. M)'; the wording's case/prefix is the gRPC library's, the
    numbers are not: M must be the configured limit."""
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, msg)
    m = re.search(r"received message larger than max \((\d+) vs\. (\d+)\)", msg, re.I)
    assert m, msg
    assert int(m.group(2)) == limit and int(m.group(1)) > limit


def test_empty_key_rejected_everywhere(server, kv):
    before = seed(kv)
    assert rpc_error(kv.Range, etcdrpc.RangeRequest(key=b"")) == EMPTY_KEY
    assert rpc_error(kv.Range, etcdrpc.RangeRequest(key=b"", range_end=b"z")) == EMPTY_KEY
    assert rpc_error(kv.Put, P(b"")) == EMPTY_KEY
    assert rpc_error(kv.DeleteRange, etcdrpc.DeleteRangeRequest(key=b"")) == EMPTY_KEY
    assert rpc_error(kv.DeleteRange, etcdrpc.DeleteRangeRequest(key=b"", range_end=b"\0")) \
        == EMPTY_KEY
    for args in (("get", ""), ("put", "", "v"), ("del", "")):
        rc, err = ctl_error(server, *args)
        assert rc != 0 and err == EMPTY_KEY[1], args
    assert snapshot(kv) == before


def test_future_revision(kv):
    rev, _ = seed(kv)
    assert rpc_error(kv.Range, etcdrpc.RangeRequest(key=b"keep/1", revision=rev + 1)) == FUTURE
    assert rpc_error(kv.Range, etcdrpc.RangeRequest(key=b"keep/", range_end=b"keep0",
                                                    revision=2 ** 62)) == FUTURE
    assert rpc_error(kv.Compact, etcdrpc.CompactionRequest(revision=rev + 1)) == FUTURE


def test_request_too_large_default_limit(server, kv):
    before = seed(kv)
    big = b"x" * (DEFAULT_MAX_REQUEST + 300 * KiB)          # ~1.8 MiB < 2 MiB gRPC limit
    assert rpc_error(kv.Put, P(b"big", big)) == TOO_LARGE
    ops = [etcdrpc.RequestOp(request_put=P(b"t%d" % i, b"y" * (200 * KiB))) for i in range(9)]
    assert rpc_error(kv.Txn, etcdrpc.TxnRequest(success=ops)) == TOO_LARGE
    rc, err = ctl_error(server, "put", "big", input="z" * (DEFAULT_MAX_REQUEST + 100 * KiB))
    assert rc != 0 and err == TOO_LARGE[1]
    # Just below the limit is accepted.
    ok = kv.Put(P(b"fits", b"f" * (DEFAULT_MAX_REQUEST - 4 * KiB)), timeout=30)
    assert ok.header.revision == before[0] + 1
    assert kv.Range(etcdrpc.RangeRequest(key=b"fits"), timeout=30).kvs[0].value[:3] == b"fff"


def test_message_above_grpc_limit_default(kv):
    before = seed(kv)
    code, msg = rpc_error(kv.Put, P(b"huge", b"h" * (2 * MiB + 100 * KiB)))
    assert_received_too_large(code, msg, DEFAULT_MAX_REQUEST + GRPC_SLACK)
    assert snapshot(kv) == before


def test_small_max_request_bytes(server_factory):
    srv = server_factory(extra_args=["--max-request-bytes", "1024"])
    kv = srv.kv()
    before = seed(kv)
    assert kv.Put(P(b"small", b"s" * 800), timeout=10).header.revision == before[0] + 1
    assert rpc_error(kv.Put, P(b"small", b"s" * 1200)) == TOO_LARGE
    assert rpc_error(kv.DeleteRange, etcdrpc.DeleteRangeRequest(key=b"k" * 3000)) == TOO_LARGE
    big_op = etcdrpc.RequestOp(request_put=P(b"t", b"t" * 1500))
    assert rpc_error(kv.Txn, etcdrpc.TxnRequest(success=[big_op])) == TOO_LARGE
    rc, err = ctl_error(srv, "put", "viactl", input="c" * 2000)
    assert rc != 0 and err == TOO_LARGE[1]
    # The limit applies to requests that are proposed (writes); reads are not
    # proposed, so a large key in a Range or read-only Txn is fine.
    r = kv.Range(etcdrpc.RangeRequest(key=b"r" * 3000), timeout=10)
    assert r.count == 0
    cmp = etcdrpc.Compare(key=b"c" * 3000, target=etcdrpc.Compare.VERSION,
                          result=etcdrpc.Compare.EQUAL, version=0)
    assert kv.Txn(etcdrpc.TxnRequest(compare=[cmp]), timeout=10).succeeded is True
    # Above max-request-bytes + 512 KiB gRPC refuses the message itself.
    code, msg = rpc_error(kv.Put, P(b"huge", b"h" * (600 * KiB)))
    assert_received_too_large(code, msg, 1024 + GRPC_SLACK)
    code, msg = rpc_error(kv.Range, etcdrpc.RangeRequest(key=b"r" * (520 * KiB)))
    assert_received_too_large(code, msg, 1024 + GRPC_SLACK)
    assert snapshot(kv)[0] == before[0] + 1


# Truncated messages: etcd (gogo protobuf) answers exactly this.
TRUNCATED = [
    ("/etcdserverpb.KV/Range", b"\x0a\x05ab"),      # key: length 5, 2 bytes follow
    ("/etcdserverpb.KV/Range", b"\xff"),            # tag varint cut short
    ("/etcdserverpb.KV/Range", b"\x0a"),            # tag without length
    ("/etcdserverpb.KV/Range", b"\x0a\x01a\x20"),   # limit tag without value
    ("/etcdserverpb.KV/Put", b"\x0a\x03k"),
    ("/etcdserverpb.KV/Put", b"\xff\xff\xff\xff"),
    ("/etcdserverpb.KV/DeleteRange", b"\x0a\x09abc"),
    ("/etcdserverpb.KV/Txn", b"\x0a\x05ab"),
    ("/etcdserverpb.KV/Compact", b"\x08"),
    ("/etcdserverpb.Maintenance/Status", b"\x0a\x05ab"),
]
# Other malformations: etcd's text names the protobuf decoder's complaint
# (e.g. "proto: wrong wireType = 0 for field Key", "proto: integer overflow",
# "proto: RangeRequest: illegal tag 0 (wire type 0)"); code and prefix are fixed.
MALFORMED = [
    ("/etcdserverpb.KV/Range", b"\x08\x01"),        # key sent as a varint
    ("/etcdserverpb.KV/Range", b"\x0f"),            # wire type 7
    ("/etcdserverpb.KV/Range", b"\x00"),            # field number 0
    ("/etcdserverpb.KV/Range", b"\x80" * 10 + b"\x01"),   # varint overflow
    ("/etcdserverpb.KV/Put", b"\x08\x01"),
    ("/etcdserverpb.KV/Txn", b"\x08\x01"),
]


def raw(channel, path):
    return channel.unary_unary(path, request_serializer=None, response_deserializer=None)


@pytest.mark.parametrize("path,payload", TRUNCATED)
def test_truncated_protobuf(server, kv, path, payload):
    before = seed(kv)
    code, msg = rpc_error(raw(server.channel(), path), payload)
    assert (code, msg) == (grpc.StatusCode.INTERNAL, UNMARSHAL + "unexpected EOF")
    assert snapshot(kv) == before


def test_other_malformed_protobuf(server, kv):
    before = seed(kv)
    ch = server.channel()
    for path, payload in MALFORMED:
        code, msg = rpc_error(raw(ch, path), payload)
        assert code == grpc.StatusCode.INTERNAL, (path, payload, code, msg)
        assert msg.startswith(UNMARSHAL), (path, payload, msg)
    assert snapshot(kv) == before


def _sub(tag, body):
    """A length-delimited field: one tag byte, a one-byte length, body."""
    return bytes([tag, len(body)]) + body


TAG0 = b"\x80\x00\x00"  # field 0, varint 0, its tag spelled in two bytes


@pytest.mark.parametrize("path,payload,name", [
    # protobuf-c kept such a field as an unknown one and packed it back as
    # 0x00, so the write became a log entry nobody could decode, and the
    # call timed out. etcd (Go) refuses it, naming the innermost message.
    ("/etcdserverpb.KV/Put", P(b"tag0").SerializeToString() + TAG0, "PutRequest"),
    ("/etcdserverpb.KV/Txn", _sub(0x12, _sub(0x12, P(b"tag0").SerializeToString() + TAG0)),
     "PutRequest"),
    ("/etcdserverpb.KV/Range", etcdrpc.RangeRequest(key=b"tag0").SerializeToString() + TAG0,
     "RangeRequest"),
])
def test_field_number_zero_refused_as_etcd(server, kv, path, payload, name):
    before = seed(kv)
    code, msg = rpc_error(raw(server.channel(), path), payload)
    assert (code, msg) == (grpc.StatusCode.INTERNAL,
                           UNMARSHAL + "proto: %s: illegal tag 0 (wire type 0)" % name)
    assert snapshot(kv) == before


def test_unknown_fields_are_skipped(server, kv):
    seed(kv)
    ch = server.channel()
    # Field 100 (varint) and field 101 (bytes) are unknown to every etcd version.
    extra = b"\xa0\x06\x01" + b"\xaa\x06\x03xyz"
    req = etcdrpc.RangeRequest(key=b"keep/2").SerializeToString() + extra
    resp = etcdrpc.RangeResponse.FromString(raw(ch, "/etcdserverpb.KV/Range")(req, timeout=10))
    assert resp.kvs[0].value == b"value-2"
    req = P(b"newer", b"client").SerializeToString() + extra
    resp = etcdrpc.PutResponse.FromString(raw(ch, "/etcdserverpb.KV/Put")(req, timeout=10))
    assert resp.header.revision > 0
    # An empty message is a valid RangeRequest with an empty key.
    assert rpc_error(raw(ch, "/etcdserverpb.KV/Range"), b"") == EMPTY_KEY


@pytest.mark.parametrize("path,message", [
    ("/etcdserverpb.KV/Nope", "unknown method Nope for service etcdserverpb.KV"),
    ("/etcdserverpb.KV/range", "unknown method range for service etcdserverpb.KV"),
    ("/etcdserverpb.Watch/Nope", "unknown method Nope for service etcdserverpb.Watch"),
    ("/etcdserverpb.Nope/Range", "unknown service etcdserverpb.Nope"),
    ("/foo.Bar/Baz", "unknown service foo.Bar"),
])
def test_unknown_method(server, kv, path, message):
    before = seed(kv)
    for payload in (b"", b"\x0a\x01a", b"\xff\xff"):
        code, msg = rpc_error(raw(server.channel(), path), payload)
        assert (code, msg) == (grpc.StatusCode.UNIMPLEMENTED, message)
    assert snapshot(kv) == before


def test_server_survives_a_barrage_of_bad_input(server, kv, etcd):
    before = seed(kv)
    ch = server.channel()
    for _ in range(3):
        for path, payload in TRUNCATED + MALFORMED:
            rpc_error(raw(ch, path), payload)
        for path in ("/etcdserverpb.KV/Nope", "/foo.Bar/Baz"):
            rpc_error(raw(ch, path), b"\x01\x02\x03")
        rpc_error(kv.Put, P(b""))
        rpc_error(kv.Put, P(b"huge", b"h" * (2 * MiB + 1)))
        rpc_error(kv.Put, P(b"big", b"b" * (DEFAULT_MAX_REQUEST + 1)))
        rpc_error(kv.Range, etcdrpc.RangeRequest(key=b"a", revision=before[0] + 100))
        ops = [etcdrpc.RequestOp(request_put=P(b"x"))] * 2
        rpc_error(kv.Txn, etcdrpc.TxnRequest(success=ops))
    assert server.running()
    assert snapshot(kv) == before
    # Still fully usable, by every client.
    assert etcd.put("after", "barrage").header.revision == before[0] + 1
    assert server.ctl_ok("get", "keep/4", "--print-value-only") == "value-4\n"


def start_refused_on_taken_port(name, url, peer, data_dir):
    """Start a member on a port in use: it must exit with etcd's 'address
    already in use' and, its listeners bound before the store opens, leave
    no data dir behind."""
    argv = [harness.METAD_BIN, "--name", name, "--data-dir", str(data_dir),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "%s=%s" % (name, peer)]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("a server on a taken port kept running")
    assert p.returncode != 0
    assert b"address already in use" in (p.stdout + p.stderr).lower()
    assert not data_dir.exists()


def test_taken_peer_port_fails_the_start(tmp_path):
    """A lone member listens on its peer URL from the start, as etcd does: a
    taken peer port fails the start before the data dir is made, not a later
    `member add --learner` (whose learner would be committed, never reached)."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        start_refused_on_taken_port("lone", "http://127.0.0.1:%d" % free_port(),
                                    "http://127.0.0.1:%d" % taken.getsockname()[1],
                                    tmp_path / "data")
    finally:
        taken.close()


def test_taken_client_port_is_not_shared(server, kv, tmp_path):
    """A second server on a client port in use fails to listen, as etcd does,
    instead of sharing the port (SO_REUSEPORT) and taking some of the first
    one's new connections."""
    # The client port is bound before the store is opened, as etcd binds its
    # listeners first: the refused start leaves no data dir behind.
    start_refused_on_taken_port("second", server.client_url,
                                "http://127.0.0.1:%d" % free_port(), tmp_path / "data")
    # Every new connection still reaches the first server and its data.
    rev = kv.Put(P(b"owner", b"first"), timeout=10).header.revision
    for _ in range(10):
        with server.new_channel() as ch:
            r = etcdrpc.KVStub(ch).Range(etcdrpc.RangeRequest(key=b"owner"), timeout=10)
            assert r.kvs[0].value == b"first" and r.header.revision == rev


def test_stream_message_above_grpc_limit(server_factory):
    """On a stream (Watch) the receive limit ends the stream with gRPC's status;
    the member keeps serving."""
    srv = server_factory(extra_args=["--max-request-bytes", "1024"])
    kv = srv.kv()
    before = seed(kv)
    watch = etcdrpc.WatchStub(srv.channel())
    big = etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=b"w" * (600 * KiB)))
    with pytest.raises(grpc.RpcError) as e:
        for _ in watch.Watch(iter([big]), timeout=10):
            pass
    assert_received_too_large(e.value.code(), e.value.details(), 1024 + GRPC_SLACK)
    assert snapshot(kv) == before


def test_compressed_requests_refused(server):
    """etcd's server installs no decompressor: a compressed request, unary or
    on a stream, is refused with grpc-go's words and nothing is applied."""
    kv = server.kv()
    before = seed(kv)
    gz = grpc.Compression.Gzip
    refused = (grpc.StatusCode.UNIMPLEMENTED,
               'grpc: Decompressor is not installed for grpc-encoding "gzip"')
    assert rpc_error(kv.Put, P(b"gz", b"z" * 900), compression=gz) == refused
    watch = etcdrpc.WatchStub(server.channel())
    create = etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=b"w" * 900))
    with pytest.raises(grpc.RpcError) as e:
        for _ in watch.Watch(iter([create]), timeout=10, compression=gz):
            pass
    assert (e.value.code(), e.value.details()) == refused
    assert snapshot(kv) == before

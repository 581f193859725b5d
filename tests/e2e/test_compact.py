"""Compaction: reads below the compacted revision fail, reads at it work,
compacting again at or below it fails, future revisions fail, --physical, and
the compacted revision survives a restart."""

import grpc
import pytest
from etcd3 import etcdrpc

from harness import IS_REFERENCE_ETCD, ctl_error, header_ok, rpc_error

COMPACTED = "etcdserver: mvcc: required revision has been compacted"
FUTURE = "etcdserver: mvcc: required revision is a future revision"
R = etcdrpc.RangeRequest


def put(kv, key, value):
    return kv.Put(etcdrpc.PutRequest(key=key, value=value), timeout=10).header.revision


@pytest.fixture
def history(kv):
    """a=0..4 at revs 2..6, b written at rev 4 and deleted at rev 7."""
    revs = {}
    for i in range(5):
        revs["a%d" % i] = put(kv, b"a", b"%d" % i)
        if i == 2:
            revs["b"] = put(kv, b"b", b"bee")
    revs["del_b"] = kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"b"), timeout=10).header.revision
    return revs


def compact(kv, rev, physical=False):
    return kv.Compact(etcdrpc.CompactionRequest(revision=rev, physical=physical), timeout=10)


def assert_compacted(kv, rev, key=b"a"):
    code, msg = rpc_error(kv.Range, R(key=key, revision=rev))
    assert (code, msg) == (grpc.StatusCode.OUT_OF_RANGE, COMPACTED), rev


def test_compact_then_read_below_at_and_above(kv, history):
    c = history["a2"]                       # a=2 and b present at c
    resp = compact(kv, c)
    header_ok(resp.header)
    assert resp.header.revision == history["del_b"]
    for rev in (1, history["a0"], c - 1):
        assert_compacted(kv, rev)
    # Exactly at the compacted revision the state of that moment is kept.
    at = kv.Range(R(key=b"\0", range_end=b"\0", revision=c), timeout=10)
    assert [(x.key, x.value) for x in at.kvs] == [(b"a", b"2")]
    (a,) = at.kvs
    assert a.version == 3 and a.create_revision == history["a0"] and a.mod_revision == c
    # Later history is intact, including the tombstone of b.
    b = kv.Range(R(key=b"b", revision=history["b"]), timeout=10)
    assert b.kvs[0].value == b"bee"
    assert kv.Range(R(key=b"b", revision=history["del_b"]), timeout=10).count == 0
    assert kv.Range(R(key=b"a", revision=history["a3"]), timeout=10).kvs[0].value == b"3"
    # The latest value and its metadata are untouched.
    (latest,) = kv.Range(R(key=b"a"), timeout=10).kvs
    assert (latest.value, latest.version, latest.create_revision) == (b"4", 5, history["a0"])
    # Revision 0 and negative revisions mean "latest" and are never compacted.
    assert kv.Range(R(key=b"a", revision=-1), timeout=10).kvs[0].value == b"4"


def test_compact_at_or_below_compacted_revision_fails(kv, history):
    compact(kv, history["a3"])
    for rev in (history["a3"], history["a1"], 1, 0, -1):
        code, msg = rpc_error(kv.Compact, etcdrpc.CompactionRequest(revision=rev))
        assert (code, msg) == (grpc.StatusCode.OUT_OF_RANGE, COMPACTED), rev
    # A later revision can still be compacted, up to and including the current one.
    compact(kv, history["a4"])
    compact(kv, history["del_b"])
    assert_compacted(kv, history["a4"])
    assert kv.Range(R(key=b"a", revision=history["del_b"]), timeout=10).kvs[0].value == b"4"


def test_compact_future_revision_fails(kv, history):
    cur = history["del_b"]
    code, msg = rpc_error(kv.Compact, etcdrpc.CompactionRequest(revision=cur + 1))
    assert (code, msg) == (grpc.StatusCode.OUT_OF_RANGE, FUTURE)
    # A failed compaction changed nothing.
    assert kv.Range(R(key=b"a", revision=history["a0"]), timeout=10).kvs[0].value == b"0"
    assert put(kv, b"c", b"x") == cur + 1


def test_physical_compaction(kv, history):
    resp = compact(kv, history["a4"], physical=True)
    header_ok(resp.header)
    assert_compacted(kv, history["a3"])
    assert kv.Range(R(key=b"a"), timeout=10).kvs[0].value == b"4"


def test_range_inside_txn_below_compaction(kv, history):
    compact(kv, history["a2"])
    op = etcdrpc.RequestOp(request_range=R(key=b"a", revision=history["a1"]))
    code, msg = rpc_error(kv.Txn, etcdrpc.TxnRequest(success=[op]))
    assert (code, msg) == (grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
    op = etcdrpc.RequestOp(request_range=R(key=b"a", revision=history["del_b"] + 5))
    code, msg = rpc_error(kv.Txn, etcdrpc.TxnRequest(success=[op]))
    assert (code, msg) == (grpc.StatusCode.OUT_OF_RANGE, FUTURE)


def test_etcdctl_compaction(server, kv, history):
    c = history["a3"]
    assert server.ctl_ok("compaction", str(c)) == "compacted revision %d\n" % c
    rc, err = ctl_error(server, "get", "a", "--rev", str(c - 1))
    assert rc != 0 and err == COMPACTED
    assert server.ctl_ok("get", "a", "--rev", str(c), "--print-value-only") == "3\n"
    rc, err = ctl_error(server, "compaction", str(c))
    assert rc != 0 and err == COMPACTED
    rc, err = ctl_error(server, "compaction", str(history["del_b"] + 10))
    assert rc != 0 and err == FUTURE
    out = server.ctl_ok("compaction", "--physical", str(history["del_b"]))
    assert out == "compacted revision %d\n" % history["del_b"]
    assert_compacted(kv, c)


def test_python_etcd3_compact(etcd, history):
    etcd.compact(history["a4"], physical=True)
    with pytest.raises(grpc.RpcError) as exc:
        etcd.compact(history["a1"])
    assert exc.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert exc.value.details() == COMPACTED
    assert etcd.get("a")[0] == b"4"


def test_compacted_revision_survives_restart(server, history):
    kv = server.kv()
    c = history["a3"]
    compact(kv, c, physical=True)
    rc, graceful = server.stop()
    assert graceful, "server did not exit within the deadline after SIGTERM"
    if not IS_REFERENCE_ETCD:
        assert rc == 0      # etcd re-raises SIGTERM (rc -15); metad exits 0
    server.start()
    kv = server.kv()
    for rev in (history["a0"], c - 1):
        assert_compacted(kv, rev)
    assert kv.Range(R(key=b"a", revision=c), timeout=10).kvs[0].value == b"3"
    code, msg = rpc_error(kv.Compact, etcdrpc.CompactionRequest(revision=c))
    assert (code, msg) == (grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
    # The current revision survived too: the next write continues after it.
    assert put(kv, b"z", b"z") == history["del_b"] + 1


def test_compacted_revision_survives_crash(server, history):
    kv = server.kv()
    c = history["a2"]
    compact(kv, c, physical=True)
    server.kill()
    server.start()
    kv = server.kv()
    assert_compacted(kv, c - 1)
    assert kv.Range(R(key=b"a", revision=c), timeout=10).kvs[0].value == b"2"

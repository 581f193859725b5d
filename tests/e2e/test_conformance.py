"""Conformance details found by sending the same requests to etcd and metad
(issue 14, item 7). Passes against the reference etcd (METAD_BIN=/usr/bin/etcd);
where etcd 3.4 and 3.5 differ, metad follows 3.5 and the assertion says so."""

import grpc
import pytest
from etcd3 import etcdrpc

from harness import IS_REFERENCE_ETCD_34, RPC_TIMEOUT
from watchstream import WatchStream


def op_range(key):
    return etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=key))


def test_txn_response_headers(kv):
    kv.Put(etcdrpc.PutRequest(key=b"a", value=b"1"), timeout=RPC_TIMEOUT)
    inner = etcdrpc.TxnRequest(success=[op_range(b"a"),
                                        etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(
                                            key=b"b", value=b"2"))])
    r = kv.Txn(etcdrpc.TxnRequest(success=[op_range(b"a"),
                                           etcdrpc.RequestOp(request_txn=inner)]),
               timeout=RPC_TIMEOUT)
    assert r.header.cluster_id != 0 and r.header.revision == 3
    top_range = r.responses[0].response_range
    # A Range inside a Txn has only its revision in the header.
    assert top_range.header.revision == 2   # the revision it read at
    assert top_range.header.cluster_id == 0 and top_range.header.member_id == 0
    assert top_range.header.raft_term == 0
    nested = r.responses[1].response_txn
    # A nested Txn's own header is empty; its put carries the txn's revision.
    assert nested.HasField("header")
    assert nested.header.revision == 0 and nested.header.cluster_id == 0
    assert nested.responses[0].response_range.header.cluster_id == 0
    assert nested.responses[1].response_put.header.revision == 3


def test_put_checks_the_lease_before_the_key(kv):
    # ignore_value on a missing key with a lease that does not exist: etcd
    # names the lease first.
    with pytest.raises(grpc.RpcError) as e:
        kv.Put(etcdrpc.PutRequest(key=b"missing", ignore_value=True, lease=12345),
               timeout=RPC_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "etcdserver: requested lease not found"
    # Inside a Txn the key is checked first, as etcd's checkRequestPut does.
    op = etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b"missing", ignore_value=True,
                                                          lease=12345))
    with pytest.raises(grpc.RpcError) as e:
        kv.Txn(etcdrpc.TxnRequest(success=[op]), timeout=RPC_TIMEOUT)
    assert e.value.details() == "etcdserver: key not found"


def test_range_with_unknown_sort_order(kv):
    for k in (b"s1", b"s2", b"s3"):
        kv.Put(etcdrpc.PutRequest(key=k, value=k), timeout=RPC_TIMEOUT)
    r = kv.Range(etcdrpc.RangeRequest(key=b"s", range_end=b"t", sort_order=7, limit=2),
                 timeout=RPC_TIMEOUT)
    assert [x.key for x in r.kvs] == [b"s1", b"s2"] and r.more and r.count == 3


def test_range_sort_order_out_of_range_values(kv):
    for k in (b"o1", b"o2", b"o3"):
        kv.Put(etcdrpc.PutRequest(key=k, value=k), timeout=RPC_TIMEOUT)
    # Unknown orders do not sort (key order) and keep the limit's count/more.
    for order in (-1, 3, 1 << 30):
        r = kv.Range(etcdrpc.RangeRequest(key=b"o", range_end=b"p", sort_order=order, limit=1),
                     timeout=RPC_TIMEOUT)
        assert ([x.key for x in r.kvs], r.more, r.count) == ([b"o1"], True, 3), order


def test_compacted_watch_header_and_its_cancel(server, kv):
    revs = [kv.Put(etcdrpc.PutRequest(key=b"w", value=b"%d" % i),
                   timeout=RPC_TIMEOUT).header.revision for i in range(5)]
    kv.Compact(etcdrpc.CompactionRequest(revision=revs[3]), timeout=RPC_TIMEOUT)
    head = revs[-1]
    ws = WatchStream(server.channel())
    try:
        ws.create(b"w", start_revision=revs[1], watch_id=100)
        created = ws.created()
        assert created.watch_id == 100 and created.header.revision == head
        r = ws.recv()
        assert r.watch_id == 100 and r.canceled and r.compact_revision == revs[3]
        # Its header names cluster, member and term, but no revision.
        assert r.header.cluster_id != 0 and r.header.raft_term != 0
        assert r.header.revision == 0
        # The server cancelled it, yet its id is taken until the client
        # cancels it too ...
        ws.create(b"w", watch_id=100)
        r = ws.recv()
        assert (r.created, r.canceled, r.watch_id) == (True, True, -1)
        assert r.cancel_reason == "mvcc: duplicate watch ID provided on the WatchStream"
        # ... which is answered (with the current revision) ...
        ws.cancel(100)
        r = ws.recv()
        assert (r.watch_id, r.canceled, r.header.revision) == (100, True, head)
        # ... once: a second cancel is not, as for any unknown id. The next
        # created response shows that nothing came before it.
        ws.cancel(100)
        ws.create(b"barrier", watch_id=100)
        r = ws.created()
        assert r.watch_id == 100 and not r.canceled
    finally:
        ws.close()


def test_alarm_and_member_list_headers(server, kv):
    rev = kv.Put(etcdrpc.PutRequest(key=b"h", value=b"1"), timeout=RPC_TIMEOUT).header.revision
    m = etcdrpc.MaintenanceStub(server.channel())
    a = m.Alarm(etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET), timeout=RPC_TIMEOUT)
    if IS_REFERENCE_ETCD_34:
        assert not a.HasField("header")   # etcd 3.5 fills it (metad follows 3.5)
    else:
        assert a.header.cluster_id != 0 and a.header.member_id != 0
        assert a.header.raft_term != 0 and a.header.revision == rev
    ml = etcdrpc.ClusterStub(server.channel()).MemberList(etcdrpc.MemberListRequest(),
                                                          timeout=RPC_TIMEOUT)
    # The Cluster service leaves the revision out (3.4 and 3.5; 3.6 adds it).
    assert ml.header.cluster_id != 0 and ml.header.member_id != 0 and ml.header.raft_term != 0
    assert ml.header.revision == 0

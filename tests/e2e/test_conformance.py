"""Conformance details found by sending the same requests to etcd and metad
(issue 14, item 7). Passes against the reference etcd (METAD_BIN=/usr/bin/etcd)."""

import grpc
import pytest
from etcd3 import etcdrpc

from harness import RPC_TIMEOUT


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

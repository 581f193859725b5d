"""Alarms and the backend quota (issue 14): Alarm GET/ACTIVATE/DEACTIVATE as
etcd answers them, NOSPACE and CORRUPT refusing writes with etcd's status and
text, alarms surviving a restart and shown by Status, and NOSPACE raised by
--quota-backend-bytes then cleared by compaction, defragment and disarm.
Each test also runs against the reference etcd (METAD_BIN=/usr/bin/etcd)."""

import os
import time

import grpc
import pytest
from etcd3 import etcdrpc

from harness import IS_REFERENCE_ETCD_34, RPC_TIMEOUT

GET = etcdrpc.AlarmRequest.GET
ACTIVATE = etcdrpc.AlarmRequest.ACTIVATE
DEACTIVATE = etcdrpc.AlarmRequest.DEACTIVATE
NOSPACE_TEXT = "etcdserver: mvcc: database space exceeded"


def alarm(m, action, member=0, kind=0):
    return m.Alarm(etcdrpc.AlarmRequest(action=action, memberID=member, alarm=kind),
                   timeout=RPC_TIMEOUT)


def pairs(resp):
    return sorted((a.memberID, a.alarm) for a in resp.alarms)


def refused(fn):
    """(code, details) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def test_alarm_actions(server):
    m = server.maintenance()
    assert pairs(alarm(m, GET)) == []
    # Activating answers the alarm, again if it is already active.
    assert pairs(alarm(m, ACTIVATE, 5, etcdrpc.NOSPACE)) == [(5, etcdrpc.NOSPACE)]
    assert pairs(alarm(m, ACTIVATE, 5, etcdrpc.NOSPACE)) == [(5, etcdrpc.NOSPACE)]
    r = alarm(m, ACTIVATE, 6, etcdrpc.CORRUPT)
    assert pairs(r) == [(6, etcdrpc.CORRUPT)]
    if not IS_REFERENCE_ETCD_34:   # etcd 3.5 fills the header of Alarm
        assert r.header.member_id != 0 and r.header.revision >= 1
    assert pairs(alarm(m, GET)) == [(5, etcdrpc.NOSPACE), (6, etcdrpc.CORRUPT)]
    assert pairs(alarm(m, GET, 0, etcdrpc.CORRUPT)) == [(6, etcdrpc.CORRUPT)]
    # Deactivating what is not active answers nothing.
    assert pairs(alarm(m, DEACTIVATE, 7, etcdrpc.NOSPACE)) == []
    assert pairs(alarm(m, DEACTIVATE, 6, etcdrpc.CORRUPT)) == [(6, etcdrpc.CORRUPT)]
    assert pairs(alarm(m, DEACTIVATE, 5, etcdrpc.NOSPACE)) == [(5, etcdrpc.NOSPACE)]
    assert pairs(alarm(m, GET)) == []
    server.client().put("after", "1")


def test_nospace_refuses_what_grows_the_store(server):
    m, kv = server.maintenance(), server.kv()
    lease = etcdrpc.LeaseStub(server.channel())
    server.client().put("a", "1")
    held = lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=60), timeout=RPC_TIMEOUT).ID
    alarm(m, ACTIVATE, 9, etcdrpc.NOSPACE)
    exhausted = (grpc.StatusCode.RESOURCE_EXHAUSTED, NOSPACE_TEXT)
    put = etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b"b", value=b"2"))
    dele = etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(key=b"zz"))
    assert refused(lambda: kv.Put(etcdrpc.PutRequest(key=b"b", value=b"2"),
                                  timeout=RPC_TIMEOUT)) == exhausted
    # A Txn that could put is refused whichever branch would run.
    assert refused(lambda: kv.Txn(etcdrpc.TxnRequest(failure=[put]),
                                  timeout=RPC_TIMEOUT)) == exhausted
    assert refused(lambda: lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=60),
                                            timeout=RPC_TIMEOUT)) == exhausted
    # Reads, deletes, delete-only txns, compaction and revokes go on.
    assert kv.Range(etcdrpc.RangeRequest(key=b"a"), timeout=RPC_TIMEOUT).kvs[0].value == b"1"
    assert kv.Txn(etcdrpc.TxnRequest(success=[dele]), timeout=RPC_TIMEOUT).succeeded
    assert kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"a"), timeout=RPC_TIMEOUT).deleted == 1
    rev = kv.Range(etcdrpc.RangeRequest(key=b"a"), timeout=RPC_TIMEOUT).header.revision
    kv.Compact(etcdrpc.CompactionRequest(revision=rev), timeout=RPC_TIMEOUT)
    lease.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=held), timeout=RPC_TIMEOUT)
    # etcdctl shows it, and disarm (GET then DEACTIVATE each) clears it.
    assert server.ctl_ok("alarm", "list").strip() == "memberID:9 alarm:NOSPACE"
    assert server.ctl_ok("alarm", "disarm").strip() == "memberID:9 alarm:NOSPACE"
    assert server.ctl_ok("alarm", "list").strip() == ""
    kv.Put(etcdrpc.PutRequest(key=b"b", value=b"2"), timeout=RPC_TIMEOUT)


def test_corrupt_refuses_writes(server):
    m, kv = server.maintenance(), server.kv()
    server.client().put("a", "1")
    alarm(m, ACTIVATE, 3, etcdrpc.CORRUPT)
    corrupt = (grpc.StatusCode.DATA_LOSS, "etcdserver: corrupt cluster")
    assert refused(lambda: kv.Put(etcdrpc.PutRequest(key=b"b"), timeout=RPC_TIMEOUT)) == corrupt
    assert refused(lambda: kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"a"),
                                          timeout=RPC_TIMEOUT)) == corrupt
    assert refused(lambda: kv.Compact(etcdrpc.CompactionRequest(revision=1),
                                      timeout=RPC_TIMEOUT)) == corrupt
    assert kv.Range(etcdrpc.RangeRequest(key=b"a"), timeout=RPC_TIMEOUT).kvs[0].value == b"1"
    alarm(m, DEACTIVATE, 3, etcdrpc.CORRUPT)
    kv.Put(etcdrpc.PutRequest(key=b"b"), timeout=RPC_TIMEOUT)


def test_alarms_survive_restart_and_show_in_status(server):
    m = server.maintenance()
    alarm(m, ACTIVATE, 11, etcdrpc.NOSPACE)
    server.restart()
    m = server.maintenance()
    assert pairs(alarm(m, GET)) == [(11, etcdrpc.NOSPACE)]
    (ep,) = server.ctl_json("endpoint", "status")
    if not IS_REFERENCE_ETCD_34:   # 3.5's Status lists the alarms as errors
        assert ep["Status"]["errors"] == ["memberID:11 alarm:NOSPACE "]
    assert refused(lambda: server.kv().Put(etcdrpc.PutRequest(key=b"b"),
                                           timeout=RPC_TIMEOUT))[1] == NOSPACE_TEXT


def test_quota_raises_nospace_and_disarm_restores_writes(server_factory):
    quota = 8 * 1024 * 1024
    srv = server_factory(extra_args=["--quota-backend-bytes", str(quota)])
    kv, m = srv.kv(), srv.maintenance()
    member = kv.Range(etcdrpc.RangeRequest(key=b"x"), timeout=RPC_TIMEOUT).header.member_id
    value = os.urandom(512 * 1024)   # incompressible
    stored = {}
    deadline = time.monotonic() + 60
    code = None
    for i in range(200):   # 100 MiB at most: far past the quota
        assert time.monotonic() < deadline
        key = b"fill/%03d" % i
        try:
            r = kv.Put(etcdrpc.PutRequest(key=key, value=value), timeout=RPC_TIMEOUT)
            stored[key] = r.header.revision
        except grpc.RpcError as e:
            code, text = e.code(), e.details()
            break
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and text == NOSPACE_TEXT
    assert len(stored) >= 8   # the quota is 16 such values
    # The member raised NOSPACE for itself through the log.
    assert pairs(alarm(m, GET)) == [(member, etcdrpc.NOSPACE)]
    # Nothing acknowledged was lost; small writes are refused too now.
    for key, rev in stored.items():
        got = kv.Range(etcdrpc.RangeRequest(key=key), timeout=RPC_TIMEOUT).kvs[0]
        assert got.mod_revision == rev and got.value == value
    assert refused(lambda: kv.Put(etcdrpc.PutRequest(key=b"small", value=b"1"),
                                  timeout=RPC_TIMEOUT))[1] == NOSPACE_TEXT
    # etcd's recovery: delete, compact, defragment, disarm.
    r = kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"fill/", range_end=b"fill0"),
                       timeout=RPC_TIMEOUT)
    assert r.deleted == len(stored)
    kv.Compact(etcdrpc.CompactionRequest(revision=r.header.revision, physical=True),
               timeout=RPC_TIMEOUT)
    m.Defragment(etcdrpc.DefragmentRequest(), timeout=60)
    assert m.Status(etcdrpc.StatusRequest(), timeout=RPC_TIMEOUT).dbSize < quota
    srv.ctl_ok("alarm", "disarm")
    assert pairs(alarm(m, GET)) == []
    kv.Put(etcdrpc.PutRequest(key=b"small", value=b"1"), timeout=RPC_TIMEOUT)
    assert kv.Range(etcdrpc.RangeRequest(key=b"small"), timeout=RPC_TIMEOUT).kvs[0].value == b"1"

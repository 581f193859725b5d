"""Who may write under /_meta/ (docs/controllers.md, "Who may write"): a
client's write that would change a controller-owned key — Put, DeleteRange,
a Txn (either branch, nested too), LeaseRevoke of a lease holding one, a
Lock on a name under one — is refused with etcd's `permission denied`,
while nodes' and brokers' keys stay theirs and the controllers' own writes
go through; once auth is on, root may write anything, other users may not
write controller-owned keys even with a readwrite role on /_meta/."""

import json

import grpc
import pytest
from etcd3 import etcdrpc

import concurrencypb as pb
from harness import IS_REFERENCE_ETCD, ctl_error, rpc_error
from metanode import wait_for

pytestmark = pytest.mark.skipif(IS_REFERENCE_ETCD, reason="metad's controllers")

DENIED = (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied")
DENIED_CTL = (1, "etcdserver: permission denied")   # etcdctl: exit 1, the error text
STATUS = "/_meta/status/nodes/broker/b1"
ROOT = "root:rootpw"


def status(server, key=STATUS, *auth):
    out = server.ctl_ok(*auth, "get", key, "--print-value-only")
    return json.loads(out) if out.strip() else None


def test_etcdctl_client_refused_node_allowed(server):
    # A delete is judged by what its range holds: with no controller key
    # yet, deleting everything deletes nothing of theirs.
    server.ctl_ok("put", "/_meta/anything", "x")
    assert server.ctl_ok("del", "--from-key", "").strip() == "1"
    # A node registers its own key: allowed, and the controller (whose
    # writes are not a client's) records it up.
    lease = server.ctl_ok("lease", "grant", "30").split()[1]
    server.ctl_ok("put", "/_meta/nodes/broker/b1", '{"addr":"h:1"}', "--lease=" + lease)
    epoch = server.ctl_json("get", "/_meta/nodes/broker/b1")["kvs"][0]["create_revision"]
    wait_for(lambda: status(server) == {"state": "up", "epoch": epoch}, 5, "b1 up")
    # A client may not write the controller's record, nor delete it, nor
    # sweep a prefix holding it.
    rc, _, err = server.ctl("put", STATUS, '{"state":"lost","epoch":1}')
    assert rc != 0 and "etcdserver: permission denied" in err, err
    assert DENIED_CTL == ctl_error(server, "del", STATUS)
    assert DENIED_CTL == ctl_error(server, "del", "--prefix", "/_meta/")
    assert DENIED_CTL == ctl_error(server, "del", "--from-key", "/_meta/n")
    assert DENIED_CTL == ctl_error(
        server, "txn", input="\nput /_meta/journal/shards/ns/s {}\n\n\n")
    assert status(server) == {"state": "up", "epoch": epoch}
    # The client-written kinds stay writable.
    for key in ("/_meta/health/broker/b1", "/_meta/decommission/broker/x",
                "/_meta/journal/requests/create/ns/s9", "/_meta/mqtt/sessions/t/c",
                "/_meta/mqtt/share/t/g/members/b1", "/_meta/anything-else"):
        server.ctl_ok("put", key, "{}")
    assert server.ctl_ok("del", "--prefix", "/_meta/mqtt/share/t/g/members/").strip() == "1"
    # A fired will is deleted by the broker that publishes it, never written.
    assert DENIED_CTL == ctl_error(server, "put", "/_meta/mqtt/will-fire/t/c", "{}")
    assert server.ctl_ok("del", "/_meta/mqtt/will-fire/t/c").strip() == "0"


def test_grpc_writes_and_nested_txn(server, kv):
    def put(k):
        return etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=k, value=b"x"))

    assert rpc_error(kv.Put, etcdrpc.PutRequest(key=b"/_meta/mqtt/share/t/g/leader",
                                                value=b"{}")) == DENIED
    # Either branch, however deep: what runs must not decide the answer.
    inner = etcdrpc.TxnRequest(failure=[put(b"/_meta/mqtt/expiring/b/1/30")])
    nested = etcdrpc.TxnRequest(success=[put(b"/ok"), etcdrpc.RequestOp(
        request_txn=etcdrpc.TxnRequest(success=[etcdrpc.RequestOp(request_txn=inner)]))])
    assert rpc_error(kv.Txn, nested) == DENIED
    # A share group's leader key, written by the controller once a live
    # broker is a member: a range delete over the group would take it.
    lease = etcdrpc.LeaseStub(server.channel()).LeaseGrant(
        etcdrpc.LeaseGrantRequest(TTL=30), timeout=10).ID
    kv.Put(etcdrpc.PutRequest(key=b"/_meta/nodes/broker/b1", value=b"{}", lease=lease))
    kv.Put(etcdrpc.PutRequest(key=b"/_meta/mqtt/share/t/g/members/b1", value=b"{}", lease=lease))
    wait_for(lambda: kv.Range(etcdrpc.RangeRequest(key=b"/_meta/mqtt/share/t/g/leader")).count,
             5, "the group's leader")
    ranged = etcdrpc.TxnRequest(success=[etcdrpc.RequestOp(
        request_delete_range=etcdrpc.DeleteRangeRequest(key=b"/_meta/mqtt/share/t/",
                                                        range_end=b"/_meta/mqtt/share/t0"))])
    ranged.success.append(put(b"/ok"))
    assert rpc_error(kv.Txn, ranged) == DENIED
    # The other branch runs, so the range is not judged.
    ranged.compare.append(etcdrpc.Compare(key=b"/nope", target=etcdrpc.Compare.VERSION,
                                          version=1))
    assert not kv.Txn(ranged).succeeded
    assert kv.Range(etcdrpc.RangeRequest(key=b"/ok")).count == 0   # nothing of it ran
    members = etcdrpc.DeleteRangeRequest(key=b"/_meta/mqtt/share/t/g/members/",
                                         range_end=b"/_meta/mqtt/share/t/g/members0")
    assert kv.DeleteRange(members).deleted == 1
    # Reads and compares of owned keys are free, and so are clients' keys.
    ok = etcdrpc.TxnRequest(
        compare=[etcdrpc.Compare(key=b"/_meta/journal/shards/ns/s",
                                 target=etcdrpc.Compare.MOD, mod_revision=0)],
        success=[put(b"/_meta/journal/requests/roll/ns/s"), etcdrpc.RequestOp(
            request_range=etcdrpc.RangeRequest(key=b"/_meta/", range_end=b"/_meta0"))])
    assert kv.Txn(ok).succeeded
    # Server-side recipes write keys too: a lock named under an owned prefix.
    lock = pb.LockStub(server.channel())
    with pytest.raises(grpc.RpcError) as e:
        lock.Lock(pb.LockRequest(name=b"/_meta/status", lease=lease), timeout=10)
    assert e.value.details() == "etcdserver: permission denied"
    assert lock.Lock(pb.LockRequest(name=b"/_meta/locks/x", lease=lease), timeout=10).key


def test_lease_of_a_controller_key_not_revocable(server):
    # A dead broker's sessions start expiry under a lease the controller
    # granted; revoking it would end them early.
    lease = server.ctl_ok("lease", "grant", "30").split()[1]
    server.ctl_ok("put", "/_meta/nodes/broker/b1", "{}", "--lease=" + lease)
    epoch = server.ctl_json("get", "/_meta/nodes/broker/b1")["kvs"][0]["create_revision"]
    server.ctl_ok("put", "/_meta/mqtt/sessions/t/c1", '{"broker":"b1","expiry_s":60}')
    server.ctl_ok("lease", "revoke", lease)   # the broker stops
    rec = "/_meta/mqtt/expiring/b1/%d/60" % epoch
    wait_for(lambda: status(server, rec), 5, "the expiring record")
    ctl_lease = server.ctl_json("get", rec)["kvs"][0]["lease"]
    assert ctl_error(server, "lease", "revoke", "%x" % ctl_lease) == (
        1, "failed to revoke lease (etcdserver: permission denied)")
    assert status(server, rec) is not None
    # A client's own lease still is.
    mine = server.ctl_ok("lease", "grant", "30").split()[1]
    server.ctl_ok("put", "/_meta/mqtt/presence/t/c1", "{}", "--lease=" + mine)
    server.ctl_ok("lease", "revoke", mine)


def test_with_auth_root_may_others_may_not(server):
    server.ctl_ok("user", "add", ROOT)
    assert server.ctl_ok("auth", "enable").strip() == "Authentication Enabled"
    root = ("--user", ROOT)
    server.ctl_ok(*root, "user", "add", "ops:opspw")
    server.ctl_ok(*root, "role", "add", "meta")
    server.ctl_ok(*root, "role", "grant-permission", "--prefix", "meta", "readwrite", "/_meta/")
    server.ctl_ok(*root, "user", "grant-role", "ops", "meta")
    ops = ("--user", "ops:opspw")
    # ops holds readwrite on /_meta/: its nodes' keys pass, the controllers' do not.
    lease = server.ctl_ok(*ops, "lease", "grant", "30").split()[1]
    server.ctl_ok(*ops, "put", "/_meta/nodes/broker/b2", "{}", "--lease=" + lease)
    epoch = server.ctl_json(*ops, "get", "/_meta/nodes/broker/b2")["kvs"][0]["create_revision"]
    key = "/_meta/status/nodes/broker/b2"
    # The controllers' writes are nobody's: auth does not stop them.
    wait_for(lambda: status(server, key, *ops) == {"state": "up", "epoch": epoch}, 5, "b2 up")
    assert DENIED_CTL == ctl_error(server, *ops, "put", key, "{}")
    # root repairs what it must.
    server.ctl_ok(*root, "put", "/_meta/status/nodes/broker/ghost", '{"state":"up","epoch":1}')
    server.ctl_ok(*root, "del", "/_meta/status/nodes/broker/ghost")

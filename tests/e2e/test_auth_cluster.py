"""Auth and RBAC on a 3-member cluster: the auth store changes go through
the log, so a user, role or permission made through any member holds on
every member; a token from one member works on the others (etcd's simple
tokens are assigned in the log too); a revoked permission is refused
everywhere; and a member that catches up by installing the leader's store
gets the auth store with it.

The first two tests also pass against three reference etcd processes:
METAD_BIN=/usr/bin/etcd /usr/bin/python3 -m pytest -q tests/e2e/test_auth_cluster.py
"""


import grpc
import pytest
from etcd3 import etcdrpc

import harness
from harness import ctl_error, rpc_error, wait_for

ROOT = "root:rootpw"
ALICE = "alice:alicepw"
DENIED = (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied")


def as_root(member, *args):
    return member.ctl_ok("--user", ROOT, *args)


def _setup(c):
    """Auth enabled through the leader, alice made through a follower."""
    leader = c.leader()
    f1, f2 = c.followers(leader)
    leader.ctl_ok("user", "add", ROOT)
    assert leader.ctl_ok("auth", "enable").strip() == "Authentication Enabled"
    # A follower applies the change a moment later (etcd's too): until then
    # it tells etcdctl that auth is off, and etcdctl sends no token.
    for m in c.members:
        wait_for(lambda: "user name is empty" in m.ctl("get", "x")[2],
                 what="%s to apply auth enable" % m.name)
    as_root(f1, "user", "add", ALICE)
    as_root(f1, "role", "add", "r1")
    as_root(f1, "role", "grant-permission", "--prefix", "r1", "readwrite", "/a/")
    as_root(f1, "user", "grant-role", "alice", "r1")
    as_root(f2, "put", "/b", "secret")
    # Each member applies the changes in its own time: wait until alice's
    # role is known everywhere before the tests look.
    for m in c.members:
        wait_for(lambda: m.ctl("--user", ALICE, "get", "/a/x", "--consistency=s")[0] == 0,
                 what="%s to know alice's role" % m.name)
    return leader, f1, f2


def test_users_roles_and_tokens_hold_on_every_member(cluster_factory):
    c = cluster_factory(3)
    leader, f1, f2 = _setup(c)
    for m in c.members:
        u = ("--user", ALICE)
        assert m.ctl_ok(*u, "put", "/a/" + m.name, m.name).strip() == "OK"
        rc, err = ctl_error(m, *u, "get", "/b")
        assert rc != 0 and err == DENIED[1], m.name
        rc, err = ctl_error(m, "get", "/a/x")
        assert rc != 0 and "user name is empty" in err, (m.name, err)
    # A token handed out by one member is good on the others.
    tok = etcdrpc.AuthStub(f1.channel()).Authenticate(
        etcdrpc.AuthenticateRequest(name="alice", password="alicepw"), timeout=10).token
    for m in (leader, f2):
        def served():
            try:
                r = m.kv().Range(etcdrpc.RangeRequest(key=b"/a/", range_end=b"/a0"),
                                 metadata=[("token", tok)], timeout=10)
                return len(r.kvs) == 3
            except grpc.RpcError:
                return False
        wait_for(served, what="%s to accept a token from %s" % (m.name, f1.name))
        assert rpc_error(m.kv().Range, etcdrpc.RangeRequest(key=b"/b"),
                         metadata=[("token", tok)]) == DENIED


def test_revoked_permission_is_refused_on_every_member(cluster_factory):
    c = cluster_factory(3)
    leader, f1, f2 = _setup(c)
    for m in c.members:
        assert m.ctl_ok("--user", ALICE, "get", "/a/", "--prefix").strip() == ""
    as_root(f2, "role", "revoke-permission", "--prefix", "r1", "/a/")
    for m in c.members:
        # Linearizable: the read waits for this member to apply the revoke.
        rc, err = ctl_error(m, "--user", ALICE, "get", "/a/", "--prefix")
        if rc == 0:  # checked before the wait: refused once applied
            wait_for(lambda: ctl_error(m, "--user", ALICE, "get", "/a/", "--prefix")[0] != 0,
                     what="%s to apply the revoke" % m.name)
            rc, err = ctl_error(m, "--user", ALICE, "get", "/a/", "--prefix")
        assert rc != 0 and err == DENIED[1], (m.name, err)
    # Disabled through a follower: everything is open again everywhere.
    as_root(f1, "auth", "disable")
    for m in c.members:
        wait_for(lambda: m.ctl("get", "/b", "--print-value-only")[0] == 0,
                 what="%s to apply auth disable" % m.name)
        assert m.ctl_ok("get", "/b", "--print-value-only").strip() == "secret"


@pytest.mark.skipif(harness._is_reference_etcd(),
                    reason="etcd 3.4 has no --experimental-snapshot-catchup-entries")
def test_member_installing_a_snapshot_gets_the_auth_store(cluster_factory):
    c = cluster_factory(3, extra_args=["--snapshot-count", "40",
                                       "--experimental-snapshot-catchup-entries", "10"])
    leader, f1, f2 = _setup(c)
    root = [("token", etcdrpc.AuthStub(leader.channel()).Authenticate(
        etcdrpc.AuthenticateRequest(name="root", password="rootpw"), timeout=10).token)]
    for i in range(150):  # the log is compacted past the auth changes
        leader.kv().Put(etcdrpc.PutRequest(key=b"/a/k%03d" % i, value=b"v"), timeout=10,
                        metadata=root)
    learner = c.add_member(learner=True, via=leader, user=ROOT)
    wait_for(lambda: "installed snapshot at index" in learner.log_text(),
             what="the learner to install a snapshot")
    # A learner serves serializable reads only (Authenticate neither, as
    # etcd): alice logs in through the leader, and the token, assigned in
    # the log after the learner joined, is good on the learner.
    tok = [("token", etcdrpc.AuthStub(leader.channel()).Authenticate(
        etcdrpc.AuthenticateRequest(name="alice", password="alicepw"), timeout=10).token)]
    kv = learner.kv()

    def reads():
        try:
            r = kv.Range(etcdrpc.RangeRequest(key=b"/a/k149", serializable=True),
                         metadata=tok, timeout=10)
            return len(r.kvs) == 1
        except grpc.RpcError:
            return False
    wait_for(reads, what="alice to read on the learner")
    assert rpc_error(kv.Range, etcdrpc.RangeRequest(key=b"/b", serializable=True),
                     metadata=tok) == DENIED

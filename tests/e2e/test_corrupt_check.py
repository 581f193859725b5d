"""Corruption checks (issue 15): --experimental-initial-corrupt-check refuses
to start a member whose data no longer matches its peers', and
--experimental-corrupt-check-time makes the leader raise the CORRUPT alarm
for it, as etcd 3.4 does.

A member's data is altered while it is stopped with metad-test-corrupt-kv (a
test helper built next to metad, tests/helpers/corrupt_kv.c): it flips a bit
in the stored value of a key's newest revision, in place, as a bad disk
would. Only the single-member test also runs against the reference etcd.
"""

import json
import os
import subprocess
import time

import grpc
import pytest
from etcd3 import etcdrpc

from harness import IS_REFERENCE_ETCD, METAD_BIN, RPC_TIMEOUT

CORRUPT_KV = os.path.join(os.path.dirname(METAD_BIN), "metad-test-corrupt-kv")
DEADLINE = 30.0
needs_metad = pytest.mark.skipif(IS_REFERENCE_ETCD, reason="alters metad's own data files")


def wait_for(cond, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("not within %.0fs: %s" % (deadline, what))
        time.sleep(0.1)  # poll interval


def log_events(srv, msg):
    out = []
    for line in srv.log_text().splitlines():
        if ('"msg":"%s"' % msg) in line:
            out.append(json.loads(line[line.index("{"):]))
    return out


def serializable_value(m, key):
    try:
        r = m.kv().Range(etcdrpc.RangeRequest(key=key, serializable=True), timeout=RPC_TIMEOUT)
    except grpc.RpcError:
        return None
    return r.kvs[0].value if r.kvs else None


def put_and_replicate(cluster, leader, key, value):
    """Put through the leader; wait until every member has applied it."""
    leader.kv().Put(etcdrpc.PutRequest(key=key, value=value), timeout=RPC_TIMEOUT)
    for m in cluster.members:
        wait_for(lambda: serializable_value(m, key) == value, "%s has %r" % (m.name, key))


def corrupt(member, key):
    assert not member.running()
    p = subprocess.run([CORRUPT_KV, member.data_dir, key], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert "altered %s" % key in p.stdout


def member_id(cluster, m):
    return cluster.status(m).header.member_id


@needs_metad
def test_initial_check_refuses_a_member_altered_while_down(cluster_factory):
    c = cluster_factory(3, extra_args=["--experimental-initial-corrupt-check"])
    leader = c.leader()
    put_and_replicate(c, leader, b"fruit", b"apple")
    f, g = c.followers(leader)

    # A healthy restart passes the check, having compared with both peers.
    g.restart()
    passed = log_events(g, "initial corruption checking passed; no corruption")
    assert passed, g.log_tail()
    assert not log_events(g, "found different hash values from remote peer")

    f.stop()
    corrupt(f, "fruit")
    f._spawn()
    end = time.monotonic() + DEADLINE
    while f.proc.poll() is None:
        assert time.monotonic() < end, "the altered member kept running:\n" + f.log_tail()
        time.sleep(0.1)  # poll interval for the process's exit
    f.killed = True  # its exit is what this test expects, not a crash
    assert f.proc.returncode != 0
    diffs = log_events(f, "found different hash values from remote peer")
    assert len(diffs) == 2, f.log_tail()  # both peers disagree with it
    assert all(d["local-member-hash"] != d["remote-peer-hash"] for d in diffs)
    assert "found data inconsistency with peers" in f.log_text()
    # The other two go on serving.
    leader.kv().Put(etcdrpc.PutRequest(key=b"after", value=b"ok"), timeout=RPC_TIMEOUT)


@needs_metad
def test_periodic_check_raises_the_corrupt_alarm(cluster_factory):
    c = cluster_factory(3, extra_args=["--experimental-corrupt-check-time", "1s"])
    leader = c.leader()
    put_and_replicate(c, leader, b"fruit", b"apple")
    f = c.followers(leader)[0]
    fid = member_id(c, f)
    f.stop()
    corrupt(f, "fruit")
    f.start()  # no initial check: it serves, with the altered value
    assert serializable_value(f, b"fruit") == b"`pple"  # "a" with its low bit flipped

    def corrupt_alarms():
        r = c.leader().maintenance().Alarm(etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET),
                                           timeout=RPC_TIMEOUT)
        return [a for a in r.alarms if a.alarm == etcdrpc.CORRUPT]
    alarms = wait_for(corrupt_alarms, "the leader raises CORRUPT")
    assert [a.memberID for a in alarms] == [fid]
    assert log_events(c.leader(), "same compact revision then hashes must match")
    # etcd's corrupt applier: writes are refused everywhere.
    with pytest.raises(grpc.RpcError) as e:
        c.leader().kv().Put(etcdrpc.PutRequest(key=b"k", value=b"v"), timeout=RPC_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.DATA_LOSS
    assert e.value.details() == "etcdserver: corrupt cluster"


def test_single_member_checks_are_no_ops(server_factory):
    args = ["--experimental-initial-corrupt-check", "--experimental-corrupt-check-time", "1s"]
    if IS_REFERENCE_ETCD:
        args += ["--logger", "zap"]
    srv = server_factory(extra_args=args)
    srv.kv().Put(etcdrpc.PutRequest(key=b"a", value=b"1"), timeout=RPC_TIMEOUT)
    srv.restart()  # now it has data: the initial check runs, with no peer
    assert log_events(srv, "starting initial corruption check")
    assert log_events(srv, "initial corruption checking passed; no corruption")
    wait_for(lambda: log_events(srv, "finished peer corruption check"), "a periodic pass")
    assert all(e["number-of-peers-checked"] == 0
               for e in log_events(srv, "finished peer corruption check"))
    r = srv.maintenance().Alarm(etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET),
                                timeout=RPC_TIMEOUT)
    assert list(r.alarms) == []
    srv.kv().Put(etcdrpc.PutRequest(key=b"a", value=b"2"), timeout=RPC_TIMEOUT)

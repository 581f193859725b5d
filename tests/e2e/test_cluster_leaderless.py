"""A member cut off from its cluster ends the streams whose clients asked
for a leader (gRPC metadata hasleader: true, as etcdctl and clientv3's
WithRequireLeader send) after three election timeouts without one, with
etcd's `etcdserver: no leader`; streams that did not ask stay open. New
calls that ask are refused at once.

Also passes against three reference etcd processes:
METAD_BIN=/usr/bin/etcd /usr/bin/python3 -m pytest -q tests/e2e/test_cluster_leaderless.py
"""

import json
import socket
import threading
import time

import grpc
from etcd3 import etcdrpc

LEADER_MD = (("hasleader", "true"),)


def _watch(member, key, metadata):
    """A Watch stream kept open (no half-close); returns (thread, result, done)."""
    done = threading.Event()
    result = {}

    def requests():
        yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=key))
        done.wait()

    stream = etcdrpc.WatchStub(member.channel()).Watch(requests(), metadata=metadata, timeout=60)

    def run():
        try:
            for _ in stream:
                pass
            result["end"] = ("eof", "")
        except grpc.RpcError as e:
            result["end"] = (e.code(), e.details())
        result["at"] = time.monotonic()
    t = threading.Thread(target=run)
    t.start()
    return t, result, done, stream


def test_streams_asking_for_a_leader_end_when_there_is_none(cluster_factory):
    c = cluster_factory(3)
    leader = c.leader()
    lone = c.followers(leader)[0]
    w_leader = _watch(lone, b"a", LEADER_MD)
    w_plain = _watch(lone, b"b", ())
    # Both streams are established before the cluster goes; timed from
    # the first kill (each kill waits for its process to exit), once the
    # lone member names a leader: etcd counts the three election timeouts
    # from when it loses it, and one that lost it to a stall of the loaded
    # machine just before would end its streams early (1.92 s, main of
    # 3 Dec 17:53, tests running beside it).
    deadline = time.monotonic() + 10
    while c.status(lone).leader == 0:
        assert time.monotonic() < deadline, "the lone member names no leader"
        time.sleep(0.02)  # poll interval
    gone = time.monotonic()
    for m in (leader, *c.followers(leader)):
        if m is not lone:
            m.kill()
    try:
        w_leader[0].join(timeout=20)
        assert "end" in w_leader[1], "the stream asking for a leader stayed open"
        code, details = w_leader[1]["end"]
        assert code == grpc.StatusCode.UNAVAILABLE and details == "etcdserver: no leader", \
            w_leader[1]
        # etcd: three election timeouts (1 s each) without a leader, checked
        # once per election timeout, after the one that lost it.
        # Under load (ASan, tests beside it) the monitor can count a check
        # without a leader before the kill even though Status named one
        # (1.92-1.93 s seen twice): the floor is two checks minus a stall,
        # which still shows the stream is not ended at once.
        waited = w_leader[1]["at"] - gone
        assert 1.0 <= waited <= 10, waited
        assert "end" not in w_plain[1], w_plain[1]
        # A new call asking for a leader is refused at once.
        try:
            etcdrpc.KVStub(lone.channel()).Range(etcdrpc.RangeRequest(key=b"a"),
                                                 metadata=LEADER_MD, timeout=5)
            raise AssertionError("a Range asking for a leader was served")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE
            assert e.details() == "etcdserver: no leader"
    finally:
        for w in (w_leader, w_plain):
            w[2].set()
            w[3].cancel()
            w[0].join(timeout=10)


def _answers_status(member):
    """etcdctl endpoint status within a second (a process of its own: its
    connection ends with it, answered or not)."""
    rc, out, _ = member.ctl("--dial-timeout", "500ms", "--command-timeout", "1s",
                            "endpoint", "status", "-w", "json")
    return json.loads(out)[0]["Status"] if rc == 0 else None


def test_member_serves_only_once_published(cluster_factory):
    """As etcd's: a restarted member binds its client port at once but serves
    it only after publishing itself through the log, which takes a leader:
    alone it answers nothing (not even Status), so it serves no read from a
    store that may be behind; once a second member is back, both serve."""
    c = cluster_factory(3)
    c.leader()
    first = c.members[0]
    assert first.ctl_ok("put", "before", "v") == "OK\n"
    for m in c.members:
        m.stop()
    first._stopping = False
    first._spawn()
    deadline = time.monotonic() + 10
    while True:  # the port is bound (connections wait in its backlog)
        try:
            socket.create_connection(("127.0.0.1", first.client_port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "client port never bound"
            time.sleep(0.02)  # poll interval
    window = time.monotonic() + 2.0  # two election timeouts
    while time.monotonic() < window:
        assert _answers_status(first) is None, "served without a leader"
    second = c.members[1]
    second._stopping = False
    second._spawn()
    first.wait_ready()
    second.wait_ready()
    assert _answers_status(first)["leader"] != 0
    assert second.ctl_ok("get", "before", "--print-value-only") == "v\n"

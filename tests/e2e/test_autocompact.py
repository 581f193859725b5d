"""Auto-compaction as etcd 3.4 does it (--auto-compaction-mode,
--auto-compaction-retention): old revisions become compacted on schedule while
the latest values stay, and in a cluster only the leader compacts, through the
log, so every member ends at the same compacted revision.

Periodic mode with a 2 s retention compacts about every 2 s (the revision
sampled 2 s to 2.2 s earlier); etcd accepts the same flags. The waits below
poll for the effect of that timer, which the test itself configured, with a
deadline. Revision mode ticks every 5 minutes in etcd; metad's test-only
METAD_TEST_REVISION_COMPACT_INTERVAL_MS shortens the tick for the test.
"""

import json
import time

import grpc
import pytest
from etcd3 import etcdrpc

from harness import IS_REFERENCE_ETCD

COMPACTED = "etcdserver: mvcc: required revision has been compacted"
FUTURE = "etcdserver: mvcc: required revision is a future revision"
DEADLINE = 30.0  # seconds: several 2 s periods, even on a loaded (or ASan) run
R = etcdrpc.RangeRequest


def periodic_args(retention="2s"):
    args = ["--auto-compaction-mode", "periodic", "--auto-compaction-retention", retention]
    if IS_REFERENCE_ETCD:
        args += ["--logger", "zap"]  # etcd 3.4's zap lines carry the same messages
    return args


def put(kv, key, value):
    return kv.Put(etcdrpc.PutRequest(key=key, value=value), timeout=10).header.revision


def compacted(kv, rev, key=b"a", serializable=False):
    try:
        kv.Range(R(key=key, revision=rev, serializable=serializable), timeout=10)
        return False
    except grpc.RpcError as e:
        # A follower read locally may not have applied rev yet (slow under ASan).
        if serializable and e.details() == FUTURE:
            return False
        assert (e.code(), e.details()) == (grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
        return True


def wait_for(cond, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("not within %.0fs: %s" % (deadline, what))
        time.sleep(0.1)  # poll interval for a timer the test configured


def log_events(srv, msg):
    """The JSON log lines with this msg, as dicts."""
    out = []
    for line in srv.log_text().splitlines():
        if ('"msg":"%s"' % msg) in line:
            try:
                out.append(json.loads(line[line.index("{"):]))
            except ValueError:
                pass
    return out


def test_periodic_compacts_old_revisions_keeps_latest(server_factory):
    srv = server_factory(extra_args=periodic_args())
    kv = srv.kv()
    revs = [put(kv, b"a", b"%d" % i) for i in range(5)]
    # Just written: younger than the retention, nothing of it is compacted yet.
    assert not compacted(kv, revs[0])
    wait_for(lambda: compacted(kv, revs[-1] - 1), "revisions below the last write compacted")
    # The latest value and its metadata stay.
    (a,) = kv.Range(R(key=b"a"), timeout=10).kvs
    assert (a.value, a.version, a.create_revision, a.mod_revision) == (b"4", 5, revs[0], revs[-1])
    # etcd's log lines, naming the revision and the period (the line comes
    # once the compaction has been answered, possibly after the read above).
    wait_for(lambda: any(e["revision"] == revs[-1]
                         for e in log_events(srv, "completed auto periodic compaction")),
             "the compaction at the last write logged")
    done = log_events(srv, "completed auto periodic compaction")
    assert all(e["compact-period"] == "2s" for e in done), done
    assert max(e["revision"] for e in done) == revs[-1], done
    assert log_events(srv, "starting auto periodic compaction")
    top = revs[-1]
    # Exactly at the compacted revision the value of that moment is readable.
    assert kv.Range(R(key=b"a", revision=top), timeout=10).kvs[0].value == b"4"


def test_periodic_retention_window(server_factory):
    """A revision is compacted only once it is older than the retention: a
    write made after the first compaction is still readable at once, and
    becomes compacted later, when a newer write exists."""
    srv = server_factory(extra_args=periodic_args())
    kv = srv.kv()
    first = put(kv, b"a", b"old")
    put(kv, b"a", b"mid")
    wait_for(lambda: compacted(kv, first), "the first write compacted")
    fresh = put(kv, b"b", b"1")
    assert kv.Range(R(key=b"b", revision=fresh), timeout=10).kvs[0].value == b"1"
    put(kv, b"b", b"2")
    wait_for(lambda: compacted(kv, fresh, key=b"b"), "the later write compacted")
    assert kv.Range(R(key=b"b"), timeout=10).kvs[0].value == b"2"
    assert kv.Range(R(key=b"a"), timeout=10).kvs[0].value == b"mid"


def test_revision_mode_keeps_last_n(server_factory, monkeypatch):
    if IS_REFERENCE_ETCD:
        pytest.skip("etcd's revision-mode compactor ticks every 5 minutes, with no "
                    "way to shorten it for a test")
    monkeypatch.setenv("METAD_TEST_REVISION_COMPACT_INTERVAL_MS", "200")
    srv = server_factory(extra_args=["--auto-compaction-mode", "revision",
                                     "--auto-compaction-retention", "3"])
    kv = srv.kv()
    revs = [put(kv, b"a", b"%d" % i) for i in range(10)]
    keep = revs[-1] - 3
    wait_for(lambda: compacted(kv, keep - 1), "revisions below current - 3 compacted")
    # current - 3 and later stay readable.
    assert kv.Range(R(key=b"a", revision=keep), timeout=10).kvs[0].value == b"6"
    assert kv.Range(R(key=b"a"), timeout=10).kvs[0].value == b"9"
    wait_for(lambda: any(e["revision"] == keep
                         for e in log_events(srv, "completed auto revision compaction")),
             "the compaction at current - 3 logged")
    done = log_events(srv, "completed auto revision compaction")
    assert done[-1]["revision"] == keep, done
    assert done[-1]["revision-compaction-retention"] == 3
    # No further writes: the same revision is not compacted again.
    n = len(log_events(srv, "starting auto revision compaction"))
    put_rev = put(kv, b"b", b"x")  # one write: the next tick compacts at keep + 1
    wait_for(lambda: compacted(kv, keep), "the window moved with the write")
    assert kv.Range(R(key=b"b", revision=put_rev), timeout=10).kvs[0].value == b"x"
    assert len(log_events(srv, "starting auto revision compaction")) == n + 1


def test_cluster_compacts_once_through_the_leader(cluster_factory):
    c = cluster_factory(size=3, extra_args=periodic_args())
    leader = c.leader()
    kv = leader.kv()
    revs = [put(kv, b"a", b"%d" % i) for i in range(5)]

    # Every member, read locally, sees the compaction.
    for m in c.members:
        mkv = m.kv()
        wait_for(lambda: compacted(mkv, revs[-1] - 1, serializable=True),
                 "%s compacted below the last write" % m.name)
        assert mkv.Range(R(key=b"a", serializable=True), timeout=10).kvs[0].value == b"4"

    # ... at the same revision, with the same hash.
    def same_compact_rev():
        got = set()
        for m in c.members:
            h = m.maintenance().HashKV(etcdrpc.HashKVRequest(revision=0), timeout=10)
            got.add((h.compact_revision, h.hash))
        return len(got) == 1 and got.pop()[0] == revs[-1]
    wait_for(same_compact_rev, "every member at the same compacted revision and hash")

    # Only members that led compacted (followers' compactors are paused).
    for m in c.members:
        if log_events(m, "starting auto periodic compaction"):
            assert "became leader" in m.log_text(), m.name
    assert log_events(leader, "completed auto periodic compaction")

"""Raft snapshots between members: a member that falls behind the leader's
compacted log (stopped, frozen, or added after the fact) is sent the
leader's store and goes on from there, with every key, revision, lease and
watch event as the others have them.

The snapshot and catch-up thresholds are set low so that a few hundred
writes compact the log (--snapshot-count, and etcd 3.5.14's
--experimental-snapshot-catchup-entries, which etcd 3.4 lacks: these tests
run against metad only).
"""

import os
import re
import signal
import threading

import grpc
import pytest
from etcd3 import etcdrpc

import harness
from harness import wait_for

pytestmark = pytest.mark.skipif(harness._is_reference_etcd(),
                                reason="etcd 3.4 has no --experimental-snapshot-catchup-entries")

SNAP_ARGS = ["--snapshot-count", "40", "--experimental-snapshot-catchup-entries", "10"]


def _put_many(member, prefix, n, lease=0):
    kv = member.kv()
    revs = {}
    for i in range(n):
        key = b"%s-%04d" % (prefix, i)
        r = kv.Put(etcdrpc.PutRequest(key=key, value=b"v" + key, lease=lease), timeout=10)
        revs[key] = r.header.revision
    return revs


def _serial_range(member, key, end):
    return member.kv().Range(etcdrpc.RangeRequest(key=key, range_end=end, serializable=True),
                             timeout=10)


def _same_everywhere(c, revs, prefix):
    """Every member holds every key of revs at its revision, and HashKV
    agrees at the newest revision."""
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    last = max(revs.values())
    for m in c.members:
        def missing():
            got = {kv.key: kv.mod_revision for kv in _serial_range(m, prefix, end).kvs}
            return [(k, r) for k, r in revs.items() if got.get(k) != r]
        try:
            wait_for(lambda: not missing(), what="%s to hold every key" % m.name)
        except AssertionError:
            raise AssertionError((m.name, missing()[:5]))
    hashes = {m.maintenance().HashKV(etcdrpc.HashKVRequest(revision=last), timeout=20).hash
              for m in c.members}
    assert len(hashes) == 1, hashes


def _installs(member):
    return member.log_text().count("installed snapshot at index")


def _install_indexes(member):
    """(store index, Raft snapshot index) of each install in member's log."""
    return [(int(a), int(b)) for a, b in re.findall(
        r"installed snapshot at index (\d+); raft snapshot index (\d+)", member.log_text())]


def test_stopped_member_catches_up_by_snapshot(cluster_factory):
    c = cluster_factory(3, extra_args=SNAP_ARGS)
    leader = c.leader()
    lagger = c.followers(leader)[0]
    lease = leader.client().lease(60)
    before = _put_many(leader, b"a", 20, lease=lease.id)
    lagger.stop()
    revs = _put_many(leader, b"b", 600)
    # The leader's log no longer holds what the stopped member needs.
    lagger.start()
    wait_for(lambda: _installs(lagger) >= 1, what="the member to install a snapshot")
    _same_everywhere(c, before, b"a")
    _same_everywhere(c, revs, b"b")
    # The lease came with the store: the member knows its keys.
    r = etcdrpc.LeaseStub(lagger.channel()).LeaseTimeToLive(
        etcdrpc.LeaseTimeToLiveRequest(ID=lease.id, keys=True), timeout=10)
    assert r.TTL > 0 and len(r.keys) == 20
    # It goes on from the snapshot: new writes arrive, and a restart
    # finds the installed store and the log after it.
    more = _put_many(leader, b"c", 20)
    _same_everywhere(c, more, b"c")
    lagger.stop()
    lagger.start()
    _same_everywhere(c, more, b"c")
    assert _installs(lagger) == 1, "a restart must not need the snapshot again"


def test_frozen_member_installs_a_snapshot_under_its_watchers(cluster_factory):
    """SIGSTOP a follower with a watcher on it; the log moves on; SIGCONT:
    the live member installs the leader's store and its watcher still sees
    every revision once, in order."""
    c = cluster_factory(3, extra_args=SNAP_ARGS)
    leader = c.leader()
    lagger = c.followers(leader)[0]
    start_rev = leader.kv().Put(etcdrpc.PutRequest(key=b"w-start", value=b"x"),
                                timeout=10).header.revision
    events, done = [], threading.Event()

    def requests():
        yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
            key=b"w-", range_end=b"w.", start_revision=start_rev + 1))
        done.wait()  # a half-closed stream ends the watch, as in etcd
    stream = etcdrpc.WatchStub(lagger.channel()).Watch(requests(), timeout=120)

    def collect():
        try:
            for resp in stream:
                events.extend(ev.kv.mod_revision for ev in resp.events)
                if done.is_set():
                    return
        except grpc.RpcError:
            pass
    t = threading.Thread(target=collect)
    t.start()
    try:
        os.kill(lagger.proc.pid, signal.SIGSTOP)
        try:
            revs = _put_many(leader, b"w", 600)
        finally:
            os.kill(lagger.proc.pid, signal.SIGCONT)
        wait_for(lambda: _installs(lagger) >= 1, what="the member to install a snapshot")
        last = max(revs.values())
        wait_for(lambda: events and events[-1] >= last, what="the watcher to see revision %d" % last)
        assert events == sorted(set(events)), "revisions repeated or out of order"
        assert events == sorted(revs.values()), (events[:5], len(events), len(revs))
    finally:
        done.set()
        stream.cancel()
        t.join(timeout=10)
    _same_everywhere(c, revs, b"w")


def test_learner_added_after_compaction_catches_up_by_snapshot(cluster_factory):
    c = cluster_factory(3, extra_args=SNAP_ARGS)
    leader = c.leader()
    revs = _put_many(leader, b"k", 150)
    leader.ctl_ok("compact", str(max(revs.values()) - 50))
    learner = c.add_member(learner=True, via=leader)
    wait_for(lambda: _installs(learner) >= 1, what="the learner to install a snapshot")
    # Raft restores where the installed store stands, past the leader's own
    # Raft snapshot (every 40 entries here): the entries between are not
    # sent again. Nothing is written meanwhile, so the leader still knew
    # the meta of the index it dumped.
    store, raft = _install_indexes(learner)[0]
    assert store == raft and store >= max(revs.values()), learner.log_tail()
    ids = {m["name"]: m for m in leader.ctl_json("member", "list")["members"]}
    out = harness.ctl_reconfig(leader, "member", "promote", "%x" % int(ids[learner.name]["ID"]))
    assert "promoted" in out
    _same_everywhere(c, revs, b"k")
    # The compaction came with the store: the same revision is compacted.
    rc, _, err = learner.ctl("get", "k-0000", "--rev", "2")
    assert rc != 0 and "required revision has been compacted" in err
    more = _put_many(learner, b"m", 20)
    _same_everywhere(c, more, b"m")


def _state_files(member):
    return sorted(f for f in os.listdir(member.data_dir)
                  if f.endswith(".wt") and f.split(".")[0].split("_g")[0]
                  in ("kv", "current", "lease_keys", "meta", "lease", "auth"))


def test_member_installs_twice_and_keeps_one_store(cluster_factory):
    """A second install on a member that already holds a store: each is
    loaded beside the live one and switched to; the replaced tables are
    dropped, and a restart finds the newest store."""
    c = cluster_factory(3, extra_args=SNAP_ARGS)
    leader = c.leader()
    lagger = c.followers(leader)[0]
    for round_, prefix in enumerate((b"p", b"q")):
        lagger.stop()
        revs = _put_many(leader, prefix, 300)
        lagger.start()
        wait_for(lambda: _installs(lagger) >= round_ + 1, what="install %d" % (round_ + 1))
        _same_everywhere(c, revs, prefix)
    # One generation of each state table is left once a checkpoint ran
    # (the old one is dropped when no session holds it any more).
    lagger.stop()
    lagger.start()
    _same_everywhere(c, revs, prefix)
    files = _state_files(lagger)
    assert len(files) == 6, files
    assert _installs(lagger) == 2

"""A 3-member cluster started with etcd's flags, driven by etcdctl 3.4 and
python3-etcd3: membership as etcdctl shows it, writes through any member read
from every member, linearizable reads on followers, and losing the leader
under concurrent writers without losing an acknowledged write.

Each test also passes against three reference etcd processes:
METAD_BIN=/usr/bin/etcd /usr/bin/python3 -m pytest -q tests/e2e/test_cluster.py
"""

import shutil
import socket
import threading
import time

import grpc
import pytest
from etcd3 import etcdrpc

import harness
from harness import wait_for


def test_member_list_shows_three_started_members(cluster_factory):
    c = cluster_factory(3)
    for m in c.members:
        out = m.ctl_json("member", "list")
        members = {x["name"]: x for x in out["members"]}
        assert sorted(members) == ["m0", "m1", "m2"], out
        for mm in c.members:
            got = members[mm.name]
            assert got["peerURLs"] == [mm.peer_url]
            assert got["clientURLs"] == [mm.client_url]
            assert not got.get("isLearner", False)
        harness.header_ok(out["header"], revision=False)
    # Every member names the same cluster, and each itself.
    ids = {m.ctl_json("member", "list")["header"]["cluster_id"] for m in c.members}
    assert len(ids) == 1


def test_one_leader_same_term_in_endpoint_status(cluster_factory):
    c = cluster_factory(3)
    leader = c.leader()
    rows = c.members[0].ctl_json("endpoint", "status", endpoint=c.endpoints())
    assert len(rows) == 3
    leaders = {r["Status"]["leader"] for r in rows}
    terms = {r["Status"]["raftTerm"] for r in rows}
    assert len(leaders) == 1 and len(terms) == 1, rows
    is_leader = [r for r in rows if r["Status"]["leader"] == r["Status"]["header"]["member_id"]]
    assert [r["Endpoint"] for r in is_leader] == [leader.client_url]


def test_write_through_each_member_is_read_from_every_member(cluster_factory):
    c = cluster_factory(3)
    revs = {}
    for m in c.members:
        out = m.ctl_json("put", "key-via-" + m.name, "value-" + m.name)
        revs[m.name] = int(out["header"]["revision"])
    assert len(set(revs.values())) == 3
    for reader in c.members:
        for writer in c.members:
            out = reader.ctl_json("get", "key-via-" + writer.name)
            kv = out["kvs"][0]
            assert harness.b64(kv["value"]) == ("value-" + writer.name).encode()
            assert int(kv["mod_revision"]) == revs[writer.name]


def test_linearizable_read_on_follower_sees_acknowledged_write(cluster_factory):
    c = cluster_factory(3)
    leader = c.leader()
    followers = c.followers(leader)
    lkv = leader.kv()
    fkvs = [f.kv() for f in followers]
    for i in range(200):
        key = b"lin-%d" % i
        put = lkv.Put(etcdrpc.PutRequest(key=key, value=b"v%d" % i), timeout=10)
        f = fkvs[i % 2]
        got = f.Range(etcdrpc.RangeRequest(key=key), timeout=10)
        assert got.count == 1 and got.kvs[0].value == b"v%d" % i, i
        assert got.header.revision >= put.header.revision


def test_serializable_read_on_follower_is_local(cluster_factory):
    c = cluster_factory(3)
    leader = c.leader()
    leader.ctl_ok("put", "s", "1")
    f = c.followers(leader)[0]
    # Serializable reads may lag but converge without any further write.
    end = time.monotonic() + 10
    while time.monotonic() < end:
        out = f.ctl_json("get", "s", "--consistency=s")
        if out.get("kvs"):
            break
        time.sleep(0.02)  # poll interval
    assert harness.b64(out["kvs"][0]["value"]) == b"1"


def _writer(member, prefix, stop, acked, errors):
    """Puts distinct keys through one member until stopped; records every
    acknowledged (key, value, revision)."""
    kv = etcdrpc.KVStub(member.new_channel())
    i = 0
    while not stop.is_set():
        key = b"%s-%06d" % (prefix, i)
        try:
            r = kv.Put(etcdrpc.PutRequest(key=key, value=key), timeout=5)
            acked.append((key, r.header.revision))
        except grpc.RpcError as e:
            errors.append(e.code())
            time.sleep(0.01)  # back-off between failed attempts, not synchronisation
        i += 1


def test_kill_leader_under_writers_loses_nothing(cluster_factory):
    c = cluster_factory(3)
    leader = c.leader()
    followers = c.followers(leader)
    stop = threading.Event()
    acked, errors = [], []
    threads = [threading.Thread(target=_writer,
                                args=(followers[i % 2], b"w%02d" % i, stop, acked, errors))
               for i in range(16)]
    for t in threads:
        t.start()
    try:
        end = time.monotonic() + 20
        while len(acked) < 300 and time.monotonic() < end:
            time.sleep(0.02)  # poll interval
        assert len(acked) >= 300, (len(acked), errors[:5])
        leader.kill()
        killed_at = time.monotonic()
        new_leader = c.leader(deadline=10, among=followers)
        # etcd's promise: a new leader within an election timeout (1 s)
        # plus a second of slack for this loaded machine.
        assert time.monotonic() - killed_at <= 2.0 + 1.0
        assert new_leader is not leader
        before = len(acked)
        end = time.monotonic() + 10
        while len(acked) < before + 300 and time.monotonic() < end:
            time.sleep(0.02)  # poll interval
        assert len(acked) >= before + 300, "writes did not resume: %s" % errors[-5:]
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    leader.start()
    c.leader()
    # Every acknowledged write, on every member, with its revision.
    last_rev = max(r for _, r in acked)
    for m in c.members:
        kv = m.kv()
        got = kv.Range(etcdrpc.RangeRequest(key=b"w", range_end=b"x"), timeout=20)
        have = {x.key: x.mod_revision for x in got.kvs}
        missing = [(k, r) for k, r in acked if have.get(k) != r]
        assert not missing, (m.name, missing[:5])
    hashes = set()
    for m in c.members:
        h = m.maintenance().HashKV(etcdrpc.HashKVRequest(revision=last_rev), timeout=20)
        hashes.add(h.hash)
    assert len(hashes) == 1, hashes


def test_member_started_with_another_token_is_refused(cluster_factory):
    c = cluster_factory(3)
    leader = c.leader()
    f = c.followers(leader)[0]
    f.stop()
    # Same member, wiped, now claiming another cluster: its peers refuse it
    # and the rest of the cluster goes on.
    shutil.rmtree(f.data_dir)
    f.extra_args[f.extra_args.index("--initial-cluster-token") + 1] = "other-token"
    f._stopping = False
    f._spawn()
    leader.ctl_ok("put", "after", "1")
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if "cluster ID mismatch" in leader.log_text() + f.log_text():
            break
        time.sleep(0.05)  # poll interval
    assert "cluster ID mismatch" in leader.log_text() + f.log_text()


def test_lease_kept_alive_through_a_follower_survives(cluster_factory):
    """The leader decides expiry; keep-alives and TTL queries sent to a
    follower reach it (etcd forwards them)."""
    c = cluster_factory(3)
    leader = c.leader()
    f = c.followers(leader)[0]
    cli = f.client()
    lease = cli.lease(3)
    cli.put("held", "by-lease", lease=lease)
    end = time.monotonic() + 7     # more than twice the TTL
    while time.monotonic() < end:
        for r in cli.refresh_lease(lease.id):
            assert r.TTL == 3
        time.sleep(0.5)  # the client's keep-alive period, not synchronisation
    for m in c.members:
        assert m.client().get("held")[0] == b"by-lease", m.name
    ttl = f.ctl_json("lease", "timetolive", "%x" % lease.id)
    assert 0 < int(ttl["ttl"]) <= 3 and int(ttl["granted-ttl"]) == 3
    # Without keep-alives the leader expires it and every member sees it go.
    end = time.monotonic() + 10
    while time.monotonic() < end and any(m.client().get("held")[0] for m in c.members):
        time.sleep(0.05)  # poll interval
    assert all(m.client().get("held")[0] is None for m in c.members)
    assert int(f.ctl_json("lease", "timetolive", "%x" % lease.id)["ttl"]) == -1


def test_move_leader(cluster_factory):
    c = cluster_factory(3)
    leader = c.leader()
    target = c.followers(leader)[0]
    tid = "%x" % target.ctl_json("endpoint", "status")[0]["Status"]["header"]["member_id"]
    out = leader.ctl_ok("move-leader", tid, endpoint=c.endpoints())
    assert "Leadership transferred from" in out
    assert c.leader() is target
    # Asked of a follower, etcd answers "not leader" (etcdctl itself only
    # sends it to the leader, so ask over gRPC).
    f = c.followers(target)[0]
    code, details = harness.rpc_error(f.maintenance().MoveLeader,
                                      etcdrpc.MoveLeaderRequest(targetID=int(tid, 16)))
    assert (code, details) == (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: not leader")
    code, details = harness.rpc_error(target.maintenance().MoveLeader,
                                      etcdrpc.MoveLeaderRequest(targetID=12345))
    assert (code, details) == (grpc.StatusCode.FAILED_PRECONDITION,
                               "etcdserver: bad leader transferee")
    # Back over gRPC: etcd answers with an empty message, no header.
    back = leader.ctl_json("endpoint", "status")[0]["Status"]["header"]["member_id"]
    r = target.maintenance().MoveLeader(etcdrpc.MoveLeaderRequest(targetID=back), timeout=10)
    assert not r.HasField("header")
    assert c.leader() is leader


def _member_ids(m):
    return {x.get("name") or x["peerURLs"][0]: x for x in m.ctl_json("member", "list")["members"]}


def test_learner_added_catches_up_then_promoted(cluster_factory):
    c = cluster_factory(3)
    leader = c.leader()
    for i in range(50):
        leader.ctl_ok("put", "before-%02d" % i, "v%d" % i)
    learner = c.add_member(learner=True, via=c.followers(leader)[0])
    ids = _member_ids(leader)
    assert len(ids) == 4
    me = [x for x in ids.values() if x["peerURLs"] == [learner.peer_url]][0]
    assert me.get("isLearner") is True
    # A learner serves serializable reads only, as etcd.
    wait_for(lambda: learner.ctl_json("get", "before-49", "--consistency=s").get("kvs"),
             what="the learner to catch up")
    rc, out, err = learner.ctl("get", "before-00")
    assert rc != 0 and "etcdserver: rpc not supported for learner" in err
    watch = etcdrpc.WatchStub(learner.channel()).Watch(
        iter([etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=b"x"))]),
        timeout=10)
    with pytest.raises(grpc.RpcError) as e:
        next(watch)
    assert e.value.details() == "etcdserver: rpc not supported for learner"
    # Promote (through any member); it then votes and serves everything.
    out = harness.ctl_reconfig(c.followers(leader)[0], "member", "promote", "%x" % int(me["ID"]))
    assert "promoted" in out
    ids = _member_ids(leader)
    assert not any(x.get("isLearner") for x in ids.values())
    wait_for(lambda: learner.ctl("get", "before-00")[0] == 0, what="the promoted member to serve")
    assert "v0" in learner.ctl_ok("get", "before-00")
    assert len({m.ctl_json("member", "list")["header"]["cluster_id"] for m in c.members}) == 1


def test_member_add_errors_as_etcd(cluster_factory):
    c = cluster_factory(3)
    m = c.members[0]
    # Right after start the leader has not been connected to every voter
    # for etcd's 5 s: it refuses changes with "unhealthy cluster" until then.
    end = time.monotonic() + 30
    while True:
        rc, msg = harness.ctl_error(m, "member", "add", "dup",
                                    "--peer-urls=%s" % c.members[1].peer_url)
        if msg != "etcdserver: unhealthy cluster" or time.monotonic() > end:
            break
        time.sleep(0.2)  # poll interval
    assert rc != 0 and msg == "etcdserver: Peer URLs already exists", msg
    rc, msg = harness.ctl_error(m, "member", "remove", "1234")
    assert rc != 0 and msg == "etcdserver: member not found", msg
    rc, msg = harness.ctl_error(m, "member", "promote", "%x" % m.ctl_json("member", "list")
                                ["members"][0]["ID"])
    assert rc != 0 and msg == "etcdserver: can only promote a learner member", msg


def test_member_remove_follower_and_leader(cluster_factory):
    c = cluster_factory(3)
    leader = c.leader()
    f = c.followers(leader)[0]
    fid = "%x" % f.ctl_json("endpoint", "status")[0]["Status"]["header"]["member_id"]
    f._stopping = True  # a removed member stops by itself, as etcd's does
    harness.ctl_reconfig(leader, "member", "remove", fid)
    wait_for(lambda: not f.running(), what="the removed member to exit")
    assert f.proc.returncode == 0
    rest = [m for m in c.members if m is not f]
    for m in rest:
        wait_for(lambda: len(m.ctl_json("member", "list")["members"]) == 2, what="removal")
    rest[0].ctl_ok("put", "after-remove", "1")
    # Removing the leader: the other member takes over alone.
    lid = "%x" % leader.ctl_json("endpoint", "status")[0]["Status"]["header"]["member_id"]
    other = [m for m in rest if m is not leader][0]
    leader._stopping = True
    harness.ctl_reconfig(other, "member", "remove", lid)
    wait_for(lambda: not leader.running(), what="the removed leader to exit")
    wait_for(lambda: c.leader(among=[other]) is other, what="the survivor to lead")
    other.ctl_ok("put", "after-leader-remove", "1")
    assert [x.get("name") for x in other.ctl_json("member", "list")["members"]] == [other.name]


def test_member_update_peer_urls(cluster_factory):
    c = cluster_factory(3)
    m = c.members[1]
    mid = "%x" % m.ctl_json("endpoint", "status")[0]["Status"]["header"]["member_id"]
    # The same listener under another name: the member stays reachable.
    new_url = "http://localhost:%d" % m.peer_port
    out = harness.ctl_reconfig(c.members[0], "member", "update", mid, "--peer-urls=%s" % new_url)
    assert "updated" in out

    def updated(x):
        got = [y for y in x.ctl_json("member", "list")["members"] if y.get("name") == m.name]
        return got and got[0]["peerURLs"] == [new_url]
    for x in c.members:   # member list is served locally: poll each member
        wait_for(lambda: updated(x), what="%s to show the new peer URL" % x.name)
    rc, msg = harness.ctl_error(c.members[0], "member", "update", mid,
                                "--peer-urls=%s" % c.members[2].peer_url)
    assert rc != 0 and msg == "etcdserver: Peer URLs already exists", msg
    rc, msg = harness.ctl_error(c.members[0], "member", "update", "1234",
                                "--peer-urls=http://127.0.0.1:1")
    assert rc != 0 and msg == "etcdserver: member not found", msg
    c.members[2].ctl_ok("put", "after-update", "1")


def test_lone_member_grows_to_two(cluster_factory):
    """A learner added to a single member fetches the member list from it,
    catches up and is promoted."""
    c = cluster_factory(1)
    c.members[0].ctl_ok("put", "solo", "1")
    learner = c.add_member(learner=True)
    wait_for(lambda: learner.ctl_json("get", "solo", "--consistency=s").get("kvs"),
             what="the learner to catch up")
    me = [x for x in c.members[0].ctl_json("member", "list")["members"]
          if x["peerURLs"] == [learner.peer_url]][0]
    harness.ctl_reconfig(c.members[0], "member", "promote", "%x" % int(me["ID"]))
    wait_for(lambda: learner.ctl("get", "solo")[0] == 0, what="the promoted member to serve")
    learner.ctl_ok("put", "pair", "2")
    assert "2" in c.members[0].ctl_ok("get", "pair")


def test_lone_member_adds_a_second_voter(cluster_factory):
    """etcd's own way to grow a single member: `member add` of a voter, then
    the new member started with --initial-cluster-state existing (etcd's
    IsReadyToAddVotingMember exception lets the add through its strict
    check). The new member finds itself in the list it fetches, joins, and
    both serve; the data and the hash agree."""
    for extra in ((), ("--strict-reconfig-check=false",)):
        c = cluster_factory(1, extra_args=extra)
        a = c.members[0]
        a.ctl_ok("put", "solo", "1")
        # etcd's other checks come first, as in etcd.
        rc, msg = harness.ctl_error(a, "member", "add", "dup", "--peer-urls=%s" % a.peer_url)
        assert rc != 0 and msg == "etcdserver: Peer URLs already exists", msg
        b = c.add_member(learner=False)

        def both_started():
            ms = a.ctl_json("member", "list")["members"]
            return len(ms) == 2 and all(x.get("name") for x in ms) and \
                not any(x.get("isLearner") for x in ms)
        wait_for(both_started, what="two started voters")
        b.ctl_ok("put", "pair", "2")
        assert "2" in a.ctl_ok("get", "pair")
        assert "1" in b.ctl_ok("get", "solo")
        rev = int(a.ctl_json("get", "pair")["header"]["revision"])
        hashes = {m.maintenance().HashKV(etcdrpc.HashKVRequest(revision=rev), timeout=20).hash
                  for m in (a, b)}
        assert len(hashes) == 1, hashes


def test_lone_members_second_voter_survives_a_crash(cluster_factory):
    """The add is answered once the change is on the lone member's disk: a
    kill -9 right after the answer loses it not, and the new member, started
    only then, joins the restarted one."""
    c = cluster_factory(1)
    a = c.members[0]
    a.ctl_ok("put", "solo", "1")
    b = c.announce_member(learner=False)
    assert b.peer_url in b.initial_cluster, b.initial_cluster
    a.kill()
    a._spawn()

    def peer_port_open():
        # The new member fetches the list once at its start, as etcd's does.
        try:
            socket.create_connection(("127.0.0.1", a.peer_port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(peer_port_open, what="the restarted member's peer port")
    b._spawn()
    b.wait_ready()
    a.wait_ready()
    ms = a.ctl_json("member", "list")["members"]
    assert sorted(x["peerURLs"][0] for x in ms) == sorted([a.peer_url, b.peer_url]), ms
    assert "1" in b.ctl_ok("get", "solo")
    b.ctl_ok("put", "after", "2")
    assert "2" in a.ctl_ok("get", "after")


def test_force_new_cluster_recovers_a_member_from_a_dead_majority(cluster_factory):
    c = cluster_factory(3)
    leader = c.leader()
    acked = []
    for i in range(100):
        key = "k-%03d" % i
        rev = int(leader.ctl_json("put", key, "v%d" % i)["header"]["revision"])
        acked.append((key, rev))
    survivor = c.followers(leader)[0]
    # The follower has applied what the leader acknowledged (a read-index
    # round on it proves it), then the majority is lost for good.
    assert survivor.ctl_json("get", "k-099")["kvs"]
    for m in c.members:
        if m is not survivor:
            m.kill()
    survivor.stop()
    survivor.extra_args.append("--force-new-cluster")
    survivor.start()
    out = survivor.ctl_json("member", "list")
    assert [x.get("name") for x in out["members"]] == [survivor.name]
    got = survivor.ctl_json("get", "k-", "--prefix")["kvs"]
    have = {harness.b64(kv["key"]).decode(): int(kv["mod_revision"]) for kv in got}
    assert all(have.get(k) == r for k, r in acked), "lost writes"
    # The cluster id is kept; it serves writes alone.
    assert out["header"]["cluster_id"] == survivor.ctl_json("endpoint", "status")[0]["Status"][
        "header"]["cluster_id"]
    survivor.ctl_ok("put", "after-force", "1")
    # Restarting again (without the flag) keeps the single-member cluster.
    survivor.extra_args.remove("--force-new-cluster")
    survivor.restart()
    assert "after-force" in survivor.ctl_ok("get", "after-force")


@pytest.mark.skipif(harness.IS_REFERENCE_ETCD_34,
                    reason="--experimental-lease-checkpoint-interval is etcd 3.5's")
def test_leader_change_keeps_a_lease_remaining_ttl(cluster_factory):
    """Lease checkpoints (etcd's --experimental-enable-lease-checkpoint): the
    leader records remaining TTLs in the log, so a new leader neither gives
    an idle lease its full TTL again nor expires it early."""
    c = cluster_factory(3, extra_args=["--experimental-enable-lease-checkpoint",
                                       "--experimental-lease-checkpoint-interval", "1s"])
    leader = c.leader()
    lid = int(leader.ctl_json("lease", "grant", "30")["ID"])
    leader.ctl_ok("put", "leased", "v", "--lease=%x" % lid)
    # Idle for several checkpoint intervals.
    start = time.monotonic()
    wait_for(lambda: time.monotonic() - start >= 5, what="the lease to age")
    leader.kill()
    new = c.leader(among=c.followers(leader))
    ttl = int(new.ctl_json("lease", "timetolive", "%x" % lid)["ttl"])
    assert 0 < ttl <= 27, ttl      # about 30 - 5, not a fresh 30
    assert new.client().get("leased")[0] == b"v"
    leader.start()

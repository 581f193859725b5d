"""--wal-dir (issue 15): the write-ahead data lives in its own directory
(WiredTiger's journal and the Raft log tables; etcd's member/wal), every
acknowledged write survives kill -9 and a restart with the same flags, and
a restart that names no WAL directory, or another one, is refused instead
of starting with an empty log. The first test also passes against the
reference etcd; the refusals are metad's (etcd would start afresh).
"""

import glob
import os
import time

import pytest
from etcd3 import etcdrpc

from harness import IS_REFERENCE_ETCD, RPC_TIMEOUT, ServerError

metad_only = pytest.mark.skipif(IS_REFERENCE_ETCD, reason="etcd does not refuse this")


def put(srv, key, value):
    return srv.kv().Put(etcdrpc.PutRequest(key=key, value=value),
                        timeout=RPC_TIMEOUT).header.revision


def get(srv, key):
    kvs = srv.kv().Range(etcdrpc.RangeRequest(key=key), timeout=RPC_TIMEOUT).kvs
    return (kvs[0].value, kvs[0].mod_revision) if kvs else None


def wal_server(server_factory, wal=None):
    srv = server_factory(start=False)
    wal = wal or os.path.join(srv.workdir, "wal")
    srv.extra_args = ["--wal-dir", wal]
    srv.start()
    return srv, wal


def names(d):
    return set(os.listdir(d)) if os.path.isdir(d) else set()


def test_wal_dir_holds_the_log_and_survives_kill(server_factory):
    srv, wal = wal_server(server_factory)
    acked = {b"k%03d" % i: put(srv, b"k%03d" % i, b"v%d" % i) for i in range(200)}
    srv.kill()  # SIGKILL: nothing is flushed on the way out
    if IS_REFERENCE_ETCD:
        assert glob.glob(os.path.join(wal, "*.wal"))
    else:
        in_wal, in_data = names(wal), names(srv.data_dir)
        assert any(n.startswith("WiredTigerLog.") for n in in_wal), in_wal
        assert {"raft_log.wt", "raft_state.wt"} <= in_wal, in_wal
        assert not any(n.startswith("WiredTigerLog.") or n.startswith("raft_") for n in in_data)
        assert "kv.wt" in in_data and "kv.wt" not in in_wal
    srv.start()
    for k, rev in acked.items():
        assert get(srv, k) == (b"v%d" % int(k[1:]), rev)
    assert put(srv, b"after", b"restart") == max(acked.values()) + 1


@metad_only
def test_restart_without_or_with_another_wal_dir_is_refused(server_factory, tmp_path):
    srv, wal = wal_server(server_factory)
    rev = put(srv, b"a", b"1")
    srv.stop()
    srv.extra_args = []
    with pytest.raises(ServerError) as e:
        srv.start()
    assert "keeps its write-ahead log in %s" % os.path.realpath(wal) in str(e.value)
    assert "start with --wal-dir" in str(e.value)
    srv.extra_args = ["--wal-dir", str(tmp_path / "elsewhere")]
    with pytest.raises(ServerError) as e:
        srv.start()
    assert "not in --wal-dir" in str(e.value)
    srv.extra_args = ["--wal-dir", wal]
    srv.start()
    assert get(srv, b"a") == (b"1", rev)


@metad_only
def test_existing_store_cannot_move_its_log(server_factory, tmp_path):
    srv = server_factory()
    put(srv, b"a", b"1")
    srv.stop()
    srv.extra_args = ["--wal-dir", str(tmp_path / "wal")]
    with pytest.raises(ServerError) as e:
        srv.start()
    assert "cannot move to --wal-dir" in str(e.value)
    srv.extra_args = []
    srv.start()
    assert get(srv, b"a")[0] == b"1"


@metad_only  # etcd 3.4 has no --experimental-snapshot-catchup-entries
def test_cluster_member_with_wal_dir_installs_a_snapshot(cluster_factory):
    # A relative --wal-dir: each member's own, under its working directory.
    c = cluster_factory(3, extra_args=["--wal-dir", "wal", "--snapshot-count", "40",
                                       "--experimental-snapshot-catchup-entries", "10"])
    leader = c.leader()
    lagger = c.followers(leader)[0]
    lagger.stop()
    acked = {b"s%03d" % i: put(leader, b"s%03d" % i, b"v") for i in range(300)}
    lagger.start()  # the log it needs is gone: it is sent the leader's store
    end = time.monotonic() + 30
    while "installed snapshot at index" not in lagger.log_text():
        assert time.monotonic() < end, lagger.log_tail()
        time.sleep(0.05)  # poll interval
    lagger.kill()
    lagger.start()  # the installed store and the log after it, from both dirs
    kvs = lagger.kv().Range(etcdrpc.RangeRequest(key=b"s", range_end=b"t", serializable=True),
                            timeout=RPC_TIMEOUT).kvs
    assert {kv.key: kv.mod_revision for kv in kvs} == acked
    assert {"raft_log.wt", "raft_state.wt"} <= names(os.path.join(lagger.workdir, "wal"))

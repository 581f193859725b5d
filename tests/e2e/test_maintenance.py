"""Maintenance.Status and Cluster.MemberList as etcdctl and python3-etcd3 use them
(endpoint status / health, member list), and the ResponseHeader every RPC fills."""

import json
import re

from etcd3 import etcdrpc

from harness import IS_REFERENCE_ETCD_34, header_ok


def parse_version(v):
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", v)
    assert m, "unparsable version %r" % v
    return tuple(int(x) for x in m.groups())


def test_etcdctl_endpoint_status(server):
    server.ctl_ok("put", "a", "1")
    server.ctl_ok("put", "a", "2")
    (ep,) = server.ctl_json("endpoint", "status")
    assert ep["Endpoint"] == server.client_url
    st = ep["Status"]
    h = st["header"]
    assert h["cluster_id"] != 0 and h["member_id"] != 0 and h["raft_term"] >= 1
    assert h["revision"] == 3
    assert parse_version(st["version"]) >= (3, 4, 0)
    if not IS_REFERENCE_ETCD_34:
        # metad reports an etcd 3.5 version (Kubernetes turns features off below 3.5.13).
        assert parse_version(st["version"]) >= (3, 5, 13)
    assert st["leader"] == h["member_id"]
    assert st["dbSize"] > 0
    assert 0 < st["dbSizeInUse"] <= st["dbSize"]
    assert st["raftIndex"] >= 1 and st["raftTerm"] >= 1
    assert st["raftTerm"] == h["raft_term"]
    assert 1 <= st["raftAppliedIndex"] <= st["raftIndex"]
    assert not st.get("errors")
    assert not st.get("isLearner", False)


def test_etcdctl_endpoint_status_simple_output(server):
    out = server.ctl_ok("endpoint", "status")
    # ENDPOINT, ID, VERSION, DB SIZE, IS LEADER, IS LEARNER, RAFT TERM, RAFT INDEX,
    # RAFT APPLIED INDEX, ERRORS
    fields = [f.strip() for f in out.strip().split(",")]
    assert fields[0] == server.client_url
    member_id = server.kv().Range(etcdrpc.RangeRequest(key=b"x"), timeout=10).header.member_id
    assert fields[1] == "%x" % member_id
    assert fields[4] == "true", "IS LEADER must be true: %s" % out
    assert fields[5] == "false"


def test_raft_index_advances_with_writes(server):
    m = server.maintenance()
    s1 = m.Status(etcdrpc.StatusRequest(), timeout=10)
    for i in range(3):
        server.client().put("adv", str(i))
    s2 = m.Status(etcdrpc.StatusRequest(), timeout=10)
    assert s2.raftIndex >= s1.raftIndex + 3
    assert s2.raftTerm == s1.raftTerm
    assert s2.header.revision == s1.header.revision + 3
    header_ok(s2.header)
    assert s2.leader == s2.header.member_id


def test_etcdctl_endpoint_health(server):
    rc, out, err = server.ctl("endpoint", "health")
    assert rc == 0, err
    assert (out + err).strip().startswith("%s is healthy" % server.client_url)
    (h,) = server.ctl_json("endpoint", "health")
    assert h["endpoint"] == server.client_url and h["health"] is True
    assert not h.get("error")


def test_etcdctl_member_list(server):
    j = server.ctl_json("member", "list")
    header_ok(j["header"], revision=False)
    (m,) = j["members"]
    assert m["ID"] == j["header"]["member_id"]
    assert m["name"] == "n1"
    assert m["peerURLs"] == [server.peer_url]
    assert m["clientURLs"] == [server.client_url]
    assert not m.get("isLearner", False)
    out = server.ctl_ok("member", "list")
    assert out == "%x, started, n1, %s, %s, false\n" % (m["ID"], server.peer_url,
                                                         server.client_url)


def test_python_etcd3_status_and_members(etcd, server):
    (member,) = list(etcd.members)
    assert member.name == "n1"
    assert list(member.peer_urls) == [server.peer_url]
    assert list(member.client_urls) == [server.client_url]
    st = etcd.status()
    assert st.leader is not None and st.leader.id == member.id
    assert parse_version(st.version) >= (3, 4, 0)
    assert st.db_size > 0 and st.raft_index >= 1 and st.raft_term >= 1


def test_every_response_header_is_filled(server):
    kv, maint, cluster = server.kv(), server.maintenance(), server.cluster()
    put = kv.Put(etcdrpc.PutRequest(key=b"h", value=b"1"), timeout=10)
    rev = put.header.revision
    responses = {
        "Put": put,
        "Range": kv.Range(etcdrpc.RangeRequest(key=b"h"), timeout=10),
        "Txn": kv.Txn(etcdrpc.TxnRequest(), timeout=10),
        "DeleteRange(none)": kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"zz"), timeout=10),
        "Compact": kv.Compact(etcdrpc.CompactionRequest(revision=rev), timeout=10),
        "Status": maint.Status(etcdrpc.StatusRequest(), timeout=10),
    }
    first = put.header
    for name, resp in responses.items():
        h = resp.header
        header_ok(h)
        assert (h.cluster_id, h.member_id, h.raft_term) == \
            (first.cluster_id, first.member_id, first.raft_term), name
        assert h.revision == rev, name
    # MemberList: etcd fills cluster_id, member_id and raft_term (it leaves the
    # revision 0, so the revision is not checked here).
    ml = cluster.MemberList(etcdrpc.MemberListRequest(), timeout=10)
    header_ok(ml.header, revision=False)
    assert (ml.header.cluster_id, ml.header.member_id) == (first.cluster_id, first.member_id)
    d = kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"h"), timeout=10)
    header_ok(d.header)
    assert d.header.revision == rev + 1


def test_cluster_and_member_ids_stable_across_restart(server):
    h1 = server.kv().Put(etcdrpc.PutRequest(key=b"x", value=b"1"), timeout=10).header
    server.restart()
    h2 = server.kv().Range(etcdrpc.RangeRequest(key=b"x"), timeout=10).header
    assert (h2.cluster_id, h2.member_id) == (h1.cluster_id, h1.member_id)
    assert h2.revision == h1.revision
    assert h2.raft_term >= h1.raft_term


def test_hashkv_and_defrag(server):
    """`etcdctl endpoint hashkv` is stable for unchanged data, moves with
    writes, refuses compacted revisions; `etcdctl defrag` succeeds and
    keeps the data."""
    for i in range(20):
        server.ctl_ok("put", "h/%02d" % i, "v" * 100)
    def hashkv(*extra):
        out = json.loads(server.ctl_ok("endpoint", "hashkv", "-w", "json", *extra))
        return out[0]["HashKV"]["hash"]
    h1 = hashkv()
    assert h1 == hashkv()
    rev = int(json.loads(server.ctl_ok("get", "h/00", "-w", "json"))["header"]["revision"])
    server.ctl_ok("put", "h/extra", "x")
    assert hashkv() != h1
    assert hashkv("--rev", str(rev)) == h1  # a past revision hashes as it did
    server.ctl_ok("compaction", str(rev + 1))
    rc, _, err = server.ctl("endpoint", "hashkv", "--rev", str(rev))
    assert rc != 0 and "required revision has been compacted" in err
    for i in range(20):
        server.ctl_ok("del", "h/%02d" % i)
    assert "Finished defragmenting" in server.ctl_ok("defrag")
    assert server.ctl_ok("get", "h/extra", "--print-value-only") == "x\n"

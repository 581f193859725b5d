"""DeleteRange: single key, prefix, [a, b), from-key, prev_kv, deleted count,
one revision per call, no revision for a no-op delete, version reset and a new
create_revision after delete + re-put."""

from etcd3 import etcdrpc

from harness import header_ok

D = etcdrpc.DeleteRangeRequest


def put(kv, key, value=b"v"):
    return kv.Put(etcdrpc.PutRequest(key=key, value=value), timeout=10).header.revision


def keys(kv, rev=0):
    r = kv.Range(etcdrpc.RangeRequest(key=b"\0", range_end=b"\0", revision=rev), timeout=10)
    return [x.key for x in r.kvs]


def current_rev(kv):
    return kv.Range(etcdrpc.RangeRequest(key=b"x"), timeout=10).header.revision


def test_delete_single_key(kv):
    put(kv, b"a")
    rev = put(kv, b"b")
    d = kv.DeleteRange(D(key=b"a"), timeout=10)
    assert d.deleted == 1
    assert d.header.revision == rev + 1
    header_ok(d.header)
    assert list(d.prev_kvs) == []      # not asked for
    assert keys(kv) == [b"b"]
    assert keys(kv, rev) == [b"a", b"b"]


def test_delete_missing_key_does_not_bump_revision(kv):
    rev = put(kv, b"present")
    d = kv.DeleteRange(D(key=b"absent"), timeout=10)
    assert d.deleted == 0
    assert d.header.revision == rev
    d = kv.DeleteRange(D(key=b"absent/", range_end=b"absent0"), timeout=10)
    assert d.deleted == 0 and d.header.revision == rev
    assert current_rev(kv) == rev
    # Deleting an already deleted key is a no-op as well.
    d1 = kv.DeleteRange(D(key=b"present"), timeout=10)
    d2 = kv.DeleteRange(D(key=b"present"), timeout=10)
    assert (d1.deleted, d2.deleted) == (1, 0)
    assert d2.header.revision == d1.header.revision == rev + 1


def test_delete_prefix_is_one_revision(kv):
    for k in [b"p/1", b"p/2", b"p/3", b"q"]:
        before = put(kv, k)
    d = kv.DeleteRange(D(key=b"p/", range_end=b"p0", prev_kv=True), timeout=10)
    assert d.deleted == 3
    assert d.header.revision == before + 1
    assert [(x.key, x.value) for x in d.prev_kvs] == [(b"p/1", b"v"), (b"p/2", b"v"),
                                                     (b"p/3", b"v")]
    assert keys(kv) == [b"q"]
    assert keys(kv, before) == [b"p/1", b"p/2", b"p/3", b"q"]
    # The next write gets the next revision: the whole delete used exactly one.
    assert put(kv, b"after") == before + 2


def test_delete_range_and_from_key(kv):
    for k in [b"a", b"b", b"c", b"d", b"e"]:
        put(kv, k)
    d = kv.DeleteRange(D(key=b"b", range_end=b"d"), timeout=10)   # [b, d)
    assert d.deleted == 2
    assert keys(kv) == [b"a", b"d", b"e"]
    d = kv.DeleteRange(D(key=b"d", range_end=b"\0"), timeout=10)  # >= d
    assert d.deleted == 2
    assert keys(kv) == [b"a"]
    d = kv.DeleteRange(D(key=b"\0", range_end=b"\0"), timeout=10)  # everything
    assert d.deleted == 1
    assert keys(kv) == []


def test_prev_kv_carries_full_metadata(kv):
    r1 = put(kv, b"m", b"one")
    r2 = put(kv, b"m", b"two")
    d = kv.DeleteRange(D(key=b"m", prev_kv=True), timeout=10)
    (p,) = d.prev_kvs
    assert (p.key, p.value, p.create_revision, p.mod_revision, p.version) == \
        (b"m", b"two", r1, r2, 2)


def test_version_resets_after_delete_and_reput(kv):
    r1 = put(kv, b"vk")
    put(kv, b"vk")
    kv.DeleteRange(D(key=b"vk"), timeout=10)
    r4 = put(kv, b"vk", b"again")
    (x,) = kv.Range(etcdrpc.RangeRequest(key=b"vk"), timeout=10).kvs
    assert x.version == 1
    assert x.create_revision == r4 != r1
    assert x.mod_revision == r4
    assert x.value == b"again"


def test_etcdctl_del(server):
    for k in ["a1", "a2", "a3", "b1", "c1"]:
        server.ctl_ok("put", k, "val-" + k)
    assert server.ctl_ok("del", "nothing") == "0\n"
    assert server.ctl_ok("del", "c1") == "1\n"
    assert server.ctl_ok("del", "--prev-kv", "a2") == "1\na2\nval-a2\n"
    assert server.ctl_ok("del", "--prefix", "a") == "2\n"
    assert server.ctl_ok("get", "--from-key", "", "--keys-only").split() == ["b1"]
    server.ctl_ok("put", "x", "1")
    server.ctl_ok("put", "y", "2")
    assert server.ctl_ok("del", "b", "y") == "2\n"        # [b, y)
    assert server.ctl_ok("del", "--from-key", "a") == "1\n"
    j = server.ctl_json("del", "--prefix", "zz")
    assert j.get("deleted", 0) == 0


def test_python_etcd3_delete(etcd):
    etcd.put("d/1", "x")
    etcd.put("d/2", "y")
    etcd.put("e", "z")
    assert etcd.delete("d/1") is True
    assert etcd.delete("d/1") is False
    resp = etcd.delete("e", prev_kv=True, return_response=True)
    assert resp.deleted == 1 and resp.prev_kvs[0].value == b"z"
    assert etcd.delete_prefix("d/").deleted == 1
    assert list(etcd.get_all()) == []

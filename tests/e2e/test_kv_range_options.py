"""Range: single key, prefix, from-key, [a, b), all keys, limit + more, count,
revision (historical reads), sort order/target, serializable, keys_only,
count_only, min/max mod/create revision filters."""

import grpc
import pytest
from etcd3 import etcdrpc

from harness import b64, ctl_error, header_ok, rpc_error

R = etcdrpc.RangeRequest

# Four keys whose orders by KEY, CREATE, MOD, VERSION and VALUE all differ.
# (key, value) in put order; the value of a key never changes.
SEQUENCE = ["k3", "k1", "k4", "k2", "k1", "k1", "k4", "k1", "k3", "k4"]
VALUES = {"k1": "d", "k2": "b", "k3": "c", "k4": "a"}
ASC = {
    R.KEY: ["k1", "k2", "k3", "k4"],
    R.CREATE: ["k3", "k1", "k4", "k2"],
    R.MOD: ["k2", "k1", "k3", "k4"],
    R.VERSION: ["k2", "k3", "k4", "k1"],
    R.VALUE: ["k4", "k2", "k3", "k1"],
}


@pytest.fixture(scope="module")
def skv(module_server):
    """KV stub on the module's shared server (read-only tests on prefix s/)."""
    return module_server.kv()


@pytest.fixture(scope="module")
def sorted_keys(skv):
    """Write SEQUENCE under prefix 's/' once; return {key: (create, mod, version)}."""
    kv = skv
    meta = {}
    for k in SEQUENCE:
        rev = kv.Put(etcdrpc.PutRequest(key=b"s/" + k.encode(), value=VALUES[k].encode()),
                     timeout=10).header.revision
        c, _, v = meta.get(k, (rev, 0, 0))
        meta[k] = (c, rev, v + 1)
    return meta


def keys_of(resp):
    return [kv.key.decode().split("/", 1)[1] for kv in resp.kvs]


def rng(kv, key=b"s/", range_end=b"s0", **kw):
    return kv.Range(R(key=key, range_end=range_end, **kw), timeout=10)


def test_single_key_prefix_fromkey_range_all(server, kv):
    for k in [b"a", b"ab", b"abc", b"b", b"ba", b"c"]:
        kv.Put(etcdrpc.PutRequest(key=k, value=b"v-" + k), timeout=10)
    get = lambda **kw: [x.key for x in kv.Range(R(**kw), timeout=10).kvs]
    assert get(key=b"ab") == [b"ab"]
    assert get(key=b"zz") == []
    assert get(key=b"a", range_end=b"b") == [b"a", b"ab", b"abc"]            # prefix a
    assert get(key=b"ab", range_end=b"ac") == [b"ab", b"abc"]               # prefix ab
    assert get(key=b"ab", range_end=b"ba") == [b"ab", b"abc", b"b"]         # [ab, ba)
    assert get(key=b"b", range_end=b"\0") == [b"b", b"ba", b"c"]            # from key
    assert get(key=b"\0", range_end=b"\0") == [b"a", b"ab", b"abc", b"b", b"ba", b"c"]
    assert get(key=b"c", range_end=b"a") == []                              # end < start
    # etcdctl spellings of the same ranges.
    assert server.ctl_ok("get", "--prefix", "--keys-only", "a").split() == ["a", "ab", "abc"]
    assert server.ctl_ok("get", "--from-key", "--keys-only", "b").split() == ["b", "ba", "c"]
    assert server.ctl_ok("get", "--keys-only", "ab", "ba").split() == ["ab", "abc", "b"]
    assert server.ctl_ok("get", "ab", "ba").split() == ["ab", "v-ab", "abc", "v-abc", "b", "v-b"]
    assert server.ctl_ok("get", "--from-key", "--keys-only", "").split() == \
        ["a", "ab", "abc", "b", "ba", "c"]


def test_python_etcd3_prefix_and_range(etcd):
    for k in ["p/1", "p/2", "p/3", "q/1"]:
        etcd.put(k, k.upper())
    assert sorted(m.key for _, m in etcd.get_prefix("p/")) == [b"p/1", b"p/2", b"p/3"]
    assert [v for v, _ in etcd.get_range("p/2", "q/2")] == [b"P/2", b"P/3", b"Q/1"]
    assert len(list(etcd.get_all())) == 4


def test_limit_more_and_count(sorted_keys, skv):
    r = rng(skv, limit=2)
    assert keys_of(r) == ["k1", "k2"] and r.more is True and r.count == 4
    r = rng(skv, limit=4)
    assert keys_of(r) == ["k1", "k2", "k3", "k4"] and r.more is False and r.count == 4
    r = rng(skv, limit=10)
    assert len(r.kvs) == 4 and r.more is False and r.count == 4
    r = rng(skv, limit=0)
    assert len(r.kvs) == 4 and r.more is False


def test_etcdctl_limit(sorted_keys, module_server):
    j = module_server.ctl_json("get", "--prefix", "s/", "--limit", "3")
    assert [b64(k["key"]) for k in j["kvs"]] == [b"s/k1", b"s/k2", b"s/k3"]
    assert j["more"] is True and j["count"] == 4
    out = module_server.ctl_ok("get", "--prefix", "s/", "--limit", "1", "--keys-only")
    assert out.split() == ["s/k1"]


@pytest.mark.parametrize("target", sorted(ASC), ids=lambda t: R.SortTarget.Name(t))
@pytest.mark.parametrize("order", [R.ASCEND, R.DESCEND, R.NONE],
                         ids=lambda o: R.SortOrder.Name(o))
def test_sort(sorted_keys, skv, target, order):
    expect = list(ASC[target])
    if order == R.DESCEND:
        expect.reverse()
    # NONE: key order for target KEY; any other target sorts ASCEND.
    if order == R.NONE and target == R.KEY:
        expect = ASC[R.KEY]
    assert keys_of(rng(skv, sort_order=order, sort_target=target)) == expect
    r = rng(skv, sort_order=order, sort_target=target, limit=2)
    if order != R.NONE:
        # An explicit order disables limit push-down: sort everything, then
        # truncate. count ignores the limit.
        assert keys_of(r) == expect[:2]
    else:
        # etcd quirk (3.4 and 3.5 alike): with sort_order NONE the limit is
        # pushed down to the store, which returns limit+1 keys in key order;
        # only those are then sorted by the target and truncated.
        first3 = ASC[R.KEY][:3]
        assert keys_of(r) == [k for k in expect if k in first3][:2]
    assert r.more is True and r.count == 4


@pytest.mark.parametrize("sort_by,order", [("CREATE", "ASCEND"), ("MODIFY", "DESCEND"),
                                           ("VERSION", "DESCEND"), ("VALUE", "ASCEND"),
                                           ("KEY", "DESCEND")])
def test_etcdctl_sort(sorted_keys, module_server, sort_by, order):
    target = {"CREATE": R.CREATE, "MODIFY": R.MOD, "VERSION": R.VERSION,
              "VALUE": R.VALUE, "KEY": R.KEY}[sort_by]
    expect = ["s/" + k for k in ASC[target]]
    if order == "DESCEND":
        expect.reverse()
    out = module_server.ctl_ok("get", "--prefix", "s/", "--keys-only", "--sort-by", sort_by,
                               "--order", order)
    assert out.split() == expect


def test_python_etcd3_sorted_range(sorted_keys, module_server):
    etcd = module_server.client()
    got = [m.key for _, m in etcd.get_prefix("s/", sort_order="descend", sort_target="create")]
    assert got == [b"s/" + k.encode() for k in reversed(ASC[R.CREATE])]


def test_historical_reads_after_overwrite_and_delete(server, kv):
    r1 = kv.Put(etcdrpc.PutRequest(key=b"h", value=b"one"), timeout=10).header.revision
    r2 = kv.Put(etcdrpc.PutRequest(key=b"h", value=b"two"), timeout=10).header.revision
    r3 = kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"h"), timeout=10).header.revision
    r4 = kv.Put(etcdrpc.PutRequest(key=b"h", value=b"three"), timeout=10).header.revision
    r5 = kv.Put(etcdrpc.PutRequest(key=b"other", value=b"x"), timeout=10).header.revision
    assert [r2, r3, r4, r5] == [r1 + 1, r1 + 2, r1 + 3, r1 + 4]

    def at(rev):
        resp = kv.Range(R(key=b"h", revision=rev), timeout=10)
        # The header carries the current revision, not the one read.
        assert resp.header.revision == r5
        return [(x.value, x.version, x.create_revision, x.mod_revision) for x in resp.kvs]

    assert at(r1 - 1) == []
    assert at(r1) == [(b"one", 1, r1, r1)]
    assert at(r2) == [(b"two", 2, r1, r2)]
    assert at(r3) == []
    assert at(r4) == [(b"three", 1, r4, r4)]
    assert at(r5) == at(r4) == at(0)
    # A prefix read at a past revision sees the keys of that moment only.
    all_at = lambda rev: kv.Range(R(key=b"\0", range_end=b"\0", revision=rev), timeout=10)
    assert [x.key for x in all_at(r3).kvs] == []
    assert [x.key for x in all_at(r5).kvs] == [b"h", b"other"]
    assert all_at(r2).count == 1
    # etcdctl --rev
    assert server.ctl_ok("get", "h", "--rev", str(r1), "--print-value-only") == "one\n"
    assert server.ctl_ok("get", "h", "--rev", str(r3)) == ""
    j = server.ctl_json("get", "h", "--rev", str(r2))
    assert j["header"]["revision"] == r5 and b64(j["kvs"][0]["value"]) == b"two"


def test_future_revision_is_out_of_range(server, kv):
    rev = kv.Put(etcdrpc.PutRequest(key=b"f", value=b"v"), timeout=10).header.revision
    code, msg = rpc_error(kv.Range, R(key=b"f", revision=rev + 1))
    assert code == grpc.StatusCode.OUT_OF_RANGE
    assert msg == "etcdserver: mvcc: required revision is a future revision"
    rc, err = ctl_error(server, "get", "f", "--rev", str(rev + 100))
    assert rc != 0 and err == "etcdserver: mvcc: required revision is a future revision"
    assert kv.Range(R(key=b"f", revision=rev), timeout=10).kvs[0].value == b"v"


def test_serializable(sorted_keys, module_server, skv):
    r = rng(skv, serializable=True)
    assert keys_of(r) == ASC[R.KEY] and r.count == 4
    header_ok(r.header)
    out = module_server.ctl_ok("get", "s/k2", "--consistency", "s", "--print-value-only")
    assert out == "b\n"
    value, _ = module_server.client().get("s/k4", serializable=True)
    assert value == b"a"


def test_keys_only(sorted_keys, module_server, skv):
    r = rng(skv, keys_only=True)
    assert keys_of(r) == ASC[R.KEY]
    for x in r.kvs:
        k = x.key.decode().split("/", 1)[1]
        create, mod, version = sorted_keys[k]
        assert x.value == b""
        assert (x.create_revision, x.mod_revision, x.version) == (create, mod, version)
    assert module_server.ctl_ok("get", "--prefix", "s/", "--keys-only").split() == \
        ["s/" + k for k in ASC[R.KEY]]


def test_count_only(sorted_keys, skv):
    r = rng(skv, count_only=True)
    assert r.count == 4 and list(r.kvs) == [] and r.more is False
    r = rng(skv, count_only=True, limit=1)
    assert r.count == 4 and list(r.kvs) == []
    assert skv.Range(R(key=b"s/k1", count_only=True), timeout=10).count == 1
    assert skv.Range(R(key=b"nope", count_only=True), timeout=10).count == 0


def test_mod_and_create_revision_filters(sorted_keys, skv):
    m = sorted_keys
    def filt(**kw):
        r = rng(skv, **kw)
        # count is computed before the filters apply: still every key in range.
        assert r.count == 4
        return keys_of(r)
    mod = {k: v[1] for k, v in m.items()}
    create = {k: v[0] for k, v in m.items()}
    assert filt(min_mod_revision=mod["k1"]) == ["k1", "k3", "k4"]
    assert filt(max_mod_revision=mod["k1"]) == ["k1", "k2"]
    assert filt(min_mod_revision=mod["k1"], max_mod_revision=mod["k3"]) == ["k1", "k3"]
    assert filt(min_create_revision=create["k4"]) == ["k2", "k4"]
    assert filt(max_create_revision=create["k1"]) == ["k1", "k3"]
    assert filt(min_create_revision=create["k1"], max_create_revision=create["k4"]) == \
        ["k1", "k4"]
    assert filt(min_mod_revision=mod["k4"] + 1) == []
    # Filters combine with sort and limit: filter, sort, then truncate.
    r = rng(skv, min_mod_revision=mod["k1"], sort_order=R.DESCEND, sort_target=R.MOD, limit=2)
    assert keys_of(r) == ["k4", "k3"] and r.more is True


def test_header_on_range(sorted_keys, skv):
    r = rng(skv)
    header_ok(r.header)
    assert r.header.revision == max(v[1] for v in sorted_keys.values())


def test_paginated_list_at_pinned_revision(server, kv):
    """Kubernetes' List: pages of `limit` keys, each continuing at lastKey+"\\0",
    all at the revision of the first page, while writers keep changing the range."""
    for i in range(23):
        kv.Put(etcdrpc.PutRequest(key=b"pods/%03d" % i, value=b"v0"), timeout=10)
    first = kv.Range(R(key=b"pods/", range_end=b"pods0", limit=5), timeout=10)
    pinned = first.header.revision
    assert first.count == 23 and first.more is True
    seen = [x.key for x in first.kvs]
    key = first.kvs[-1].key + b"\0"
    pages = 1
    while True:
        # Concurrent changes after the pinned revision must not show up.
        kv.Put(etcdrpc.PutRequest(key=b"pods/%03d" % (100 + pages), value=b"new"), timeout=10)
        kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"pods/%03d" % (pages - 1)), timeout=10)
        page = kv.Range(R(key=key, range_end=b"pods0", limit=5, revision=pinned), timeout=10)
        pages += 1
        # count is the number of keys left in [key, end) at the pinned revision.
        assert page.count == 23 - len(seen)
        assert page.header.revision > pinned
        assert all(x.value == b"v0" and x.mod_revision <= pinned for x in page.kvs)
        seen += [x.key for x in page.kvs]
        if not page.more:
            break
        key = page.kvs[-1].key + b"\0"
    assert seen == [b"pods/%03d" % i for i in range(23)]
    assert pages == 5

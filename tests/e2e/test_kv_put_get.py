"""Put and plain Get: revisions, create/mod revision and version, prev_kv, lease,
ignore_value / ignore_lease and their error cases; etcdctl and python3-etcd3."""

import threading

import grpc
import pytest
from etcd3 import etcdrpc

from harness import b64, ctl_error, header_ok, rpc_error


def test_fresh_store_starts_at_revision_1_and_first_put_is_2(server, kv):
    r = kv.Range(etcdrpc.RangeRequest(key=b"nothing"), timeout=10)
    assert r.header.revision == 1
    assert r.count == 0 and list(r.kvs) == []
    p = kv.Put(etcdrpc.PutRequest(key=b"k", value=b"v"), timeout=10)
    assert p.header.revision == 2
    header_ok(p.header)


def test_etcdctl_put_get_roundtrip(server):
    assert server.ctl_ok("put", "greeting", "hello world") == "OK\n"
    assert server.ctl_ok("get", "greeting") == "greeting\nhello world\n"
    assert server.ctl_ok("get", "greeting", "--print-value-only") == "hello world\n"
    # A missing key prints nothing and succeeds.
    assert server.ctl_ok("get", "missing") == ""
    j = server.ctl_json("get", "greeting")
    assert j["count"] == 1
    (kvj,) = j["kvs"]
    assert b64(kvj["key"]) == b"greeting" and b64(kvj["value"]) == b"hello world"
    assert kvj["version"] == 1
    assert kvj["create_revision"] == kvj["mod_revision"] == j["header"]["revision"]


def test_etcdctl_put_value_from_stdin(server):
    assert server.ctl_ok("put", "fromstdin", input="line one\nline two") == "OK\n"
    assert server.ctl_ok("get", "fromstdin", "--print-value-only") == "line one\nline two\n"


def test_binary_keys_and_values(etcd):
    key, value = b"bin\x00\xff\x01key", bytes(range(256))
    etcd.put(key, value)
    got, meta = etcd.get(key)
    assert got == value and meta.key == key


def test_each_put_bumps_revision_by_one(etcd):
    revs = [etcd.put("seq/%d" % (i % 3), "v%d" % i).header.revision for i in range(10)]
    assert revs == list(range(revs[0], revs[0] + 10))


def test_create_mod_revision_and_version_semantics(etcd):
    r1 = etcd.put("cmv", "a").header.revision
    r2 = etcd.put("other", "x").header.revision
    r3 = etcd.put("cmv", "b").header.revision
    r4 = etcd.put("cmv", "c").header.revision
    assert r1 < r2 < r3 < r4
    value, meta = etcd.get("cmv")
    assert value == b"c"
    assert meta.create_revision == r1
    assert meta.mod_revision == r4
    assert meta.version == 3
    assert meta.lease_id == 0
    assert meta.response_header.revision == r4


def test_put_same_value_still_creates_revision(etcd):
    r1 = etcd.put("same", "v").header.revision
    r2 = etcd.put("same", "v").header.revision
    assert r2 == r1 + 1
    _, meta = etcd.get("same")
    assert meta.version == 2 and meta.mod_revision == r2


def test_prev_kv(etcd, server):
    first = etcd.put("pk", "one", prev_kv=True)
    assert not first.HasField("prev_kv")
    second = etcd.put("pk", "two", prev_kv=True)
    assert second.prev_kv.key == b"pk" and second.prev_kv.value == b"one"
    assert second.prev_kv.version == 1
    assert second.prev_kv.mod_revision == first.header.revision
    # Without prev_kv the field stays unset.
    third = etcd.put("pk", "three")
    assert not third.HasField("prev_kv")
    # etcdctl --prev-kv prints OK, then the previous key and value.
    assert server.ctl_ok("put", "pk", "four", "--prev-kv") == "OK\npk\nthree\n"
    j = server.ctl_json("put", "pk", "five", "--prev-kv")
    assert b64(j["prev_kv"]["value"]) == b"four" and j["prev_kv"]["version"] == 4


def test_put_with_unknown_lease_is_not_found(server, kv):
    code, msg = rpc_error(kv.Put, etcdrpc.PutRequest(key=b"lk", value=b"v", lease=0x1234))
    assert (code, msg) == (grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")
    rc, err = ctl_error(server, "put", "lk", "v", "--lease", "1234")
    assert rc != 0 and err == "etcdserver: requested lease not found"
    # Nothing was written, the revision did not move.
    r = kv.Range(etcdrpc.RangeRequest(key=b"lk"), timeout=10)
    assert r.count == 0 and r.header.revision == 1


def test_ignore_value_keeps_value_and_bumps_revision(server, kv):
    p1 = kv.Put(etcdrpc.PutRequest(key=b"iv", value=b"keep"), timeout=10)
    p2 = kv.Put(etcdrpc.PutRequest(key=b"iv", ignore_value=True, prev_kv=True), timeout=10)
    assert p2.header.revision == p1.header.revision + 1
    assert p2.prev_kv.value == b"keep"
    (got,) = kv.Range(etcdrpc.RangeRequest(key=b"iv"), timeout=10).kvs
    assert got.value == b"keep" and got.version == 2 and got.mod_revision == p2.header.revision
    assert server.ctl_ok("put", "iv", "--ignore-value") == "OK\n"
    assert server.ctl_ok("get", "iv", "--print-value-only") == "keep\n"


def test_ignore_value_on_missing_key(server, kv):
    code, msg = rpc_error(kv.Put, etcdrpc.PutRequest(key=b"nokey", ignore_value=True))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key not found")
    rc, err = ctl_error(server, "put", "nokey", "--ignore-value")
    assert rc != 0 and err == "etcdserver: key not found"


def test_ignore_lease_on_existing_and_missing_key(server, kv):
    p1 = kv.Put(etcdrpc.PutRequest(key=b"il", value=b"a"), timeout=10)
    p2 = kv.Put(etcdrpc.PutRequest(key=b"il", value=b"b", ignore_lease=True), timeout=10)
    assert p2.header.revision == p1.header.revision + 1
    (got,) = kv.Range(etcdrpc.RangeRequest(key=b"il"), timeout=10).kvs
    assert got.value == b"b" and got.lease == 0
    code, msg = rpc_error(kv.Put, etcdrpc.PutRequest(key=b"il-missing", value=b"x",
                                                     ignore_lease=True))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key not found")
    rc, err = ctl_error(server, "put", "il-missing", "x", "--ignore-lease")
    assert rc != 0 and err == "etcdserver: key not found"


def test_value_with_ignore_value_is_rejected(kv):
    kv.Put(etcdrpc.PutRequest(key=b"vi", value=b"a"), timeout=10)
    code, msg = rpc_error(kv.Put, etcdrpc.PutRequest(key=b"vi", value=b"b", ignore_value=True))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: value is provided")


@pytest.mark.parametrize("existing", [True, False])
def test_lease_with_ignore_lease_is_rejected(kv, existing):
    if existing:
        kv.Put(etcdrpc.PutRequest(key=b"li", value=b"a"), timeout=10)
    code, msg = rpc_error(kv.Put, etcdrpc.PutRequest(key=b"li", value=b"b", lease=7,
                                                     ignore_lease=True))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: lease is provided")


def test_failed_puts_leave_store_untouched(kv):
    p = kv.Put(etcdrpc.PutRequest(key=b"stable", value=b"v"), timeout=10)
    for bad in (etcdrpc.PutRequest(key=b"stable", value=b"x", lease=99),
                etcdrpc.PutRequest(key=b"stable", value=b"x", ignore_value=True),
                etcdrpc.PutRequest(key=b"gone", ignore_value=True),
                etcdrpc.PutRequest(key=b"gone", value=b"x", ignore_lease=True)):
        rpc_error(kv.Put, bad)
    r = kv.Range(etcdrpc.RangeRequest(key=b"stable"), timeout=10)
    assert r.header.revision == p.header.revision
    assert r.kvs[0].value == b"v" and r.kvs[0].version == 1


def test_python_etcd3_get_missing_and_put_if_not_exists(etcd):
    assert etcd.get("absent") == (None, None)
    assert etcd.put_if_not_exists("pine", "1") is True
    assert etcd.put_if_not_exists("pine", "2") is False
    assert etcd.get("pine")[0] == b"1"
    assert etcd.replace("pine", "1", "3") is True
    assert etcd.replace("pine", "1", "4") is False
    assert etcd.get("pine")[0] == b"3"


def test_prev_kv_absent_after_delete(kv):
    kv.Put(etcdrpc.PutRequest(key=b"pd", value=b"1"), timeout=10)
    kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=b"pd"), timeout=10)
    p = kv.Put(etcdrpc.PutRequest(key=b"pd", value=b"2", prev_kv=True), timeout=10)
    assert not p.HasField("prev_kv")


def test_concurrent_puts_get_distinct_contiguous_revisions(server, kv):
    """Under concurrency every put still gets exactly one revision of its own:
    the acknowledged revisions are start+1 .. start+N with no gap and no repeat."""
    start = kv.Range(etcdrpc.RangeRequest(key=b"x"), timeout=10).header.revision
    threads, per_thread = 8, 40
    revs, errors = [], []
    lock = threading.Lock()

    def writer(t):
        with server.new_channel() as ch:
            stub = etcdrpc.KVStub(ch)
            for i in range(per_thread):
                try:
                    r = stub.Put(etcdrpc.PutRequest(key=b"c/%d" % (i % 5), value=b"%d" % t),
                                 timeout=10)
                except grpc.RpcError as e:
                    errors.append(e)
                    return
                with lock:
                    revs.append(r.header.revision)

    ts = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert not errors, errors[:3]
    n = threads * per_thread
    assert sorted(revs) == list(range(start + 1, start + n + 1))
    total_versions = sum(x.version for x in kv.Range(
        etcdrpc.RangeRequest(key=b"c/", range_end=b"c0"), timeout=10).kvs)
    assert total_versions == n

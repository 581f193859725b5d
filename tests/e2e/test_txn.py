"""Txn: compares (VERSION/CREATE/MOD/VALUE/LEASE x EQUAL/NOT_EQUAL/GREATER/LESS,
single key and key range), success/failure branches, put/delete/range/nested
txn ops, one revision per writing txn, the duplicate-key rule, the op limit,
etcdctl txn -i and python3-etcd3 transactions."""

import json
import threading

import grpc
import pytest
from etcd3 import etcdrpc

from harness import ctl_error, header_ok, rpc_error

C = etcdrpc.Compare
T = etcdrpc.TxnRequest
TOO_MANY = "etcdserver: too many operations in txn request"
DUPLICATE = "etcdserver: duplicate key given in txn request"


def P(key, value=b"v"):
    return etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=key, value=value))


def G(key, range_end=b""):
    return etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=key, range_end=range_end))


def D(key, range_end=b"", prev_kv=False):
    return etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(
        key=key, range_end=range_end, prev_kv=prev_kv))


def N(compare=(), success=(), failure=()):
    return etcdrpc.RequestOp(request_txn=T(compare=compare, success=success, failure=failure))


def cmp(key, target, result, value, range_end=b""):
    field = {C.VERSION: "version", C.CREATE: "create_revision", C.MOD: "mod_revision",
             C.VALUE: "value", C.LEASE: "lease"}[target]
    return C(key=key, range_end=range_end, target=target, result=result, **{field: value})


def txn(kv, **kw):
    return kv.Txn(T(**kw), timeout=10)


def put(kv, key, value=b"v"):
    return kv.Put(etcdrpc.PutRequest(key=key, value=value), timeout=10).header.revision


@pytest.fixture
def three(kv):
    """k = 'mid' with version 2, create r1, mod r2 (r1 < r2); nothing else."""
    r1 = put(kv, b"k", b"low")
    r2 = put(kv, b"k", b"mid")
    return {"create": r1, "mod": r2, "version": 2, "value": b"mid"}


# (target, stored value name, a smaller value, a larger value)
NUMERIC = [(C.VERSION, "version"), (C.CREATE, "create"), (C.MOD, "mod")]


@pytest.mark.parametrize("target,name", NUMERIC, ids=["VERSION", "CREATE", "MOD"])
def test_numeric_compares(kv, three, target, name):
    v = three[name]
    cases = [(C.EQUAL, v, True), (C.EQUAL, v + 1, False),
             (C.NOT_EQUAL, v, False), (C.NOT_EQUAL, v - 1, True),
             (C.GREATER, v - 1, True), (C.GREATER, v, False),
             (C.LESS, v + 1, True), (C.LESS, v, False)]
    for result, operand, expect in cases:
        r = txn(kv, compare=[cmp(b"k", target, result, operand)])
        assert r.succeeded is expect, (C.CompareResult.Name(result), operand)


def test_value_compares(kv, three):
    cases = [(C.EQUAL, b"mid", True), (C.EQUAL, b"mi", False),
             (C.NOT_EQUAL, b"mid", False), (C.NOT_EQUAL, b"zzz", True),
             (C.GREATER, b"abc", True), (C.GREATER, b"mid", False), (C.GREATER, b"mida", False),
             (C.LESS, b"mie", True), (C.LESS, b"mid", False), (C.LESS, b"mi", False)]
    for result, operand, expect in cases:
        r = txn(kv, compare=[cmp(b"k", C.VALUE, result, operand)])
        assert r.succeeded is expect, (C.CompareResult.Name(result), operand)


def test_lease_compare(kv, three):
    # No lease is attached: the key's lease is 0.
    assert txn(kv, compare=[cmp(b"k", C.LEASE, C.EQUAL, 0)]).succeeded is True
    assert txn(kv, compare=[cmp(b"k", C.LEASE, C.NOT_EQUAL, 0)]).succeeded is False
    assert txn(kv, compare=[cmp(b"k", C.LEASE, C.GREATER, 0)]).succeeded is False
    assert txn(kv, compare=[cmp(b"k", C.LEASE, C.LESS, 1)]).succeeded is True
    assert txn(kv, compare=[cmp(b"nokey", C.LEASE, C.EQUAL, 0)]).succeeded is True


def test_missing_key_compares_as_zero_but_value_is_always_false(kv):
    put(kv, b"unrelated")
    for target in (C.VERSION, C.CREATE, C.MOD):
        assert txn(kv, compare=[cmp(b"missing", target, C.EQUAL, 0)]).succeeded is True
        assert txn(kv, compare=[cmp(b"missing", target, C.LESS, 1)]).succeeded is True
    for result in (C.EQUAL, C.NOT_EQUAL, C.GREATER, C.LESS):
        assert txn(kv, compare=[cmp(b"missing", C.VALUE, result, b"x")]).succeeded is False
    assert txn(kv, compare=[cmp(b"missing", C.VALUE, C.EQUAL, b"")]).succeeded is False


def test_compare_over_key_range(kv):
    put(kv, b"r/a", b"1")
    put(kv, b"r/b", b"1")
    put(kv, b"r/b", b"2")
    put(kv, b"s", b"1")
    rng = dict(range_end=b"r0")
    # Every key in the range must satisfy the compare.
    assert txn(kv, compare=[cmp(b"r/", C.VERSION, C.GREATER, 0, **rng)]).succeeded is True
    assert txn(kv, compare=[cmp(b"r/", C.VERSION, C.EQUAL, 1, **rng)]).succeeded is False
    assert txn(kv, compare=[cmp(b"r/", C.VERSION, C.LESS, 3, **rng)]).succeeded is True
    assert txn(kv, compare=[cmp(b"r/", C.VALUE, C.EQUAL, b"1", **rng)]).succeeded is False
    assert txn(kv, compare=[cmp(b"r/a", C.VALUE, C.EQUAL, b"1",
                                range_end=b"r/b")]).succeeded is True
    # From-key range (range_end "\0") covers r/a, r/b and s.
    assert txn(kv, compare=[cmp(b"r/", C.VERSION, C.GREATER, 0,
                                range_end=b"\0")]).succeeded is True
    assert txn(kv, compare=[cmp(b"r/", C.VERSION, C.LESS, 2,
                                range_end=b"\0")]).succeeded is False
    # An empty range compares like a missing key.
    assert txn(kv, compare=[cmp(b"t/", C.VERSION, C.EQUAL, 0,
                                range_end=b"t0")]).succeeded is True
    assert txn(kv, compare=[cmp(b"t/", C.VALUE, C.NOT_EQUAL, b"x",
                                range_end=b"t0")]).succeeded is False


def test_all_compares_must_hold(kv, three):
    ok = cmp(b"k", C.VALUE, C.EQUAL, b"mid")
    bad = cmp(b"k", C.VERSION, C.EQUAL, 99)
    assert txn(kv, compare=[ok, ok]).succeeded is True
    assert txn(kv, compare=[ok, bad]).succeeded is False
    assert txn(kv, compare=[]).succeeded is True      # no compare: success branch


def test_success_and_failure_branches(kv, three):
    guard = [cmp(b"k", C.VALUE, C.EQUAL, b"mid")]
    r = txn(kv, compare=guard, success=[P(b"ok", b"yes")], failure=[P(b"ko", b"no")])
    assert r.succeeded is True and len(r.responses) == 1
    assert r.responses[0].WhichOneof("response") == "response_put"
    r = txn(kv, compare=guard + [cmp(b"ok", C.VERSION, C.EQUAL, 0)],
            success=[P(b"ok", b"again")], failure=[P(b"ko", b"no"), G(b"ok")])
    assert r.succeeded is False and len(r.responses) == 2
    assert [x.WhichOneof("response") for x in r.responses] == ["response_put", "response_range"]
    assert r.responses[1].response_range.kvs[0].value == b"yes"
    got = {x.key: x.value for x in kv.Range(etcdrpc.RangeRequest(
        key=b"\0", range_end=b"\0"), timeout=10).kvs}
    assert got == {b"k": b"mid", b"ok": b"yes", b"ko": b"no"}


def test_writing_txn_uses_one_revision_and_ops_see_earlier_ops(kv):
    before = put(kv, b"b", b"old")
    r = txn(kv, success=[P(b"a", b"1"), G(b"a"), D(b"b", prev_kv=True), G(b"b"), P(b"c", b"3")])
    rev = r.header.revision
    assert rev == before + 1
    header_ok(r.header)
    put_a, get_a, del_b, get_b, put_c = r.responses
    assert put_a.response_put.header.revision == rev
    # A range after a put in the same txn sees the put (sub-revision order).
    (a,) = get_a.response_range.kvs
    assert (a.value, a.create_revision, a.mod_revision, a.version) == (b"1", rev, rev, 1)
    assert del_b.response_delete_range.deleted == 1
    assert del_b.response_delete_range.prev_kvs[0].value == b"old"
    assert list(get_b.response_range.kvs) == [] and get_b.response_range.count == 0
    assert put_c.response_put.header.revision == rev
    # Every key written by the txn carries the same mod_revision.
    kvs = kv.Range(etcdrpc.RangeRequest(key=b"\0", range_end=b"\0"), timeout=10).kvs
    assert [(x.key, x.mod_revision) for x in kvs] == [(b"a", rev), (b"c", rev)]
    assert put(kv, b"next") == rev + 1


def test_read_only_txn_does_not_bump_revision(kv, three):
    rev = three["mod"]
    r = txn(kv, compare=[cmp(b"k", C.VERSION, C.EQUAL, 2)], success=[G(b"k"), G(b"x")])
    assert r.succeeded is True and r.header.revision == rev
    assert r.responses[0].response_range.kvs[0].value == b"mid"
    # A failed compare with an empty failure branch writes nothing either.
    r = txn(kv, compare=[cmp(b"k", C.VERSION, C.EQUAL, 7)], success=[P(b"k", b"no")])
    assert r.succeeded is False and r.header.revision == rev
    # Deleting nothing inside a txn does not create a revision.
    r = txn(kv, success=[D(b"nothing")])
    assert r.header.revision == rev
    assert put(kv, b"n") == rev + 1


def test_nested_txn(kv, three):
    inner_ok = N(compare=[cmp(b"k", C.VALUE, C.EQUAL, b"mid")],
                 success=[P(b"inner", b"s"), G(b"k")], failure=[P(b"inner", b"f")])
    inner_ko = N(compare=[cmp(b"k", C.VALUE, C.EQUAL, b"nope")],
                 success=[P(b"inner2", b"s")], failure=[P(b"inner2", b"f")])
    r = txn(kv, success=[P(b"outer", b"o"), inner_ok, inner_ko])
    rev = r.header.revision
    assert rev == three["mod"] + 1
    assert r.succeeded is True
    n1 = r.responses[1].response_txn
    n2 = r.responses[2].response_txn
    assert n1.succeeded is True and n2.succeeded is False
    assert n1.responses[1].response_range.kvs[0].value == b"mid"
    assert n1.responses[0].response_put.header.revision == rev
    got = {x.key: (x.value, x.mod_revision) for x in kv.Range(etcdrpc.RangeRequest(
        key=b"\0", range_end=b"\0"), timeout=10).kvs}
    assert got[b"outer"] == (b"o", rev)
    assert got[b"inner"] == (b"s", rev)
    assert got[b"inner2"] == (b"f", rev)


@pytest.mark.parametrize("ops", [
    [P(b"dup"), P(b"dup")],
    [P(b"dup"), D(b"dup")],
    [D(b"dup"), P(b"dup")],
    [P(b"d/x"), D(b"d/", b"d0")],
    [P(b"dup"), N(success=[P(b"dup")])],
    [P(b"dup"), N(success=[P(b"other")], failure=[P(b"dup")])],
    [P(b"dup"), N(success=[D(b"d", b"e")])],
], ids=["put-put", "put-del", "del-put", "put-delrange", "put-nested",
        "put-nested-failure", "put-nested-del"])
def test_duplicate_keys_rejected(kv, ops):
    before = put(kv, b"seed")
    code, msg = rpc_error(kv.Txn, T(success=ops))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, DUPLICATE)
    code, msg = rpc_error(kv.Txn, T(compare=[cmp(b"seed", C.VERSION, C.EQUAL, 5)], failure=ops))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, DUPLICATE)
    r = kv.Range(etcdrpc.RangeRequest(key=b"\0", range_end=b"\0"), timeout=10)
    assert r.header.revision == before and [x.key for x in r.kvs] == [b"seed"]


def test_allowed_repeats(kv):
    # Same key in success and failure, delete twice, range + put: all fine.
    r = txn(kv, success=[P(b"q", b"s")], failure=[P(b"q", b"f")])
    assert r.succeeded is True
    put(kv, b"a")
    r = txn(kv, success=[D(b"a"), D(b"a"), G(b"q"), P(b"q", b"2")])
    assert r.responses[0].response_delete_range.deleted == 1
    assert r.responses[1].response_delete_range.deleted == 0
    assert r.responses[2].response_range.kvs[0].value == b"s"
    # etcd quirk (3.4 and 3.5 alike): the duplicate check compares range_end
    # "\0" literally, so a from-key delete never overlaps a put in the same txn.
    put(kv, b"b")
    r = txn(kv, success=[D(b"a", b"\0"), P(b"zzz")])
    assert r.responses[0].response_delete_range.deleted == 2   # b and q
    kvs = kv.Range(etcdrpc.RangeRequest(key=b"\0", range_end=b"\0"), timeout=10).kvs
    assert [x.key for x in kvs] == [b"zzz"]


def test_op_limit_default_128(kv):
    ops = [P(b"k%03d" % i) for i in range(128)]
    r = txn(kv, success=ops)
    assert len(r.responses) == 128
    rev = r.header.revision
    for field in ("success", "failure"):
        code, msg = rpc_error(kv.Txn, T(**{field: ops + [P(b"k128")]}))
        assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, TOO_MANY)
    compares = [cmp(b"c%03d" % i, C.VERSION, C.EQUAL, 0) for i in range(129)]
    code, msg = rpc_error(kv.Txn, T(compare=compares))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, TOO_MANY)
    assert txn(kv, compare=compares[:128]).succeeded is True
    assert kv.Range(etcdrpc.RangeRequest(key=b"k"), timeout=10).header.revision == rev


def test_max_txn_ops_flag_and_nested_budget(server_factory):
    srv = server_factory(extra_args=["--max-txn-ops", "4"])
    kv = srv.kv()
    assert len(txn(kv, success=[P(b"a"), P(b"b"), P(b"c"), P(b"d")]).responses) == 4
    code, msg = rpc_error(kv.Txn, T(success=[P(b"a"), P(b"b"), P(b"c"), P(b"d"), P(b"e")]))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, TOO_MANY)
    # A nested txn may use what the outer branch leaves: 4 - 2 = 2 ops.
    r = txn(kv, success=[P(b"o"), N(success=[P(b"n1"), P(b"n2")])])
    assert r.responses[1].response_txn.succeeded is True
    code, msg = rpc_error(kv.Txn, T(success=[P(b"o"), N(success=[P(b"n1"), P(b"n2"),
                                                                 P(b"n3")])]))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, TOO_MANY)


def test_empty_request_op_and_empty_compare_key(kv):
    code, msg = rpc_error(kv.Txn, T(success=[etcdrpc.RequestOp()]))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key not found")
    code, msg = rpc_error(kv.Txn, T(compare=[cmp(b"", C.VERSION, C.EQUAL, 0)]))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided")
    code, msg = rpc_error(kv.Txn, T(success=[P(b"")]))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided")


def test_etcdctl_txn_interactive(server):
    server.ctl_ok("put", "k", "v1")
    prompts = ("compares:\nsuccess requests (get, put, del):\n"
               "failure requests (get, put, del):\n")
    out = server.ctl_ok("txn", "-i", input='value("k") = "v1"\nversion("k") > "0"\n\n'
                        "put k v2\nget k\ndel nothing\n\nput k failed\n\n")
    assert out == prompts + "SUCCESS\n\nOK\n\nk\nv2\n\n0\n"
    out = server.ctl_ok("txn", "-i", input='value("k") = "v1"\n\nput k v3\n\n'
                        "put k failed\nget k\n\n")
    assert out == prompts + "FAILURE\n\nOK\n\nk\nfailed\n"
    out = server.ctl_ok("txn", "-i", "--write-out=json",
                        input='mod("k") > "0"\ncreate("k") < "1000"\n\nget k\n\n\n')
    assert out.startswith(prompts)
    j = json.loads(out[len(prompts):])
    assert j["succeeded"] is True
    (resp,) = j["responses"]
    assert resp["Response"]["ResponseRange"]["kvs"][0]["version"] == 3
    # Without -i etcdctl reads the same format silently.
    assert server.ctl_ok("txn", input='mod("k") > "0"\n\nput a b\n\n\n') == "SUCCESS\n\nOK\n"


def test_etcdctl_txn_duplicate_key_error(server):
    rc, err = ctl_error(server, "txn", input="\nput a 1\nput a 2\n\n\n")
    assert rc != 0 and err == DUPLICATE


def test_python_etcd3_transaction(etcd):
    etcd.put("/t/x", "doot")
    t = etcd.transactions
    ok, responses = etcd.transaction(
        compare=[t.value("/t/x") == "doot", t.version("/t/x") > 0,
                 t.create("/t/x") > 0, t.mod("/t/x") < 1000],
        success=[t.put("/t/x", "success"), t.get("/t/x")],
        failure=[t.put("/t/x", "failure")])
    assert ok is True
    assert responses[1][0][0] == b"success"
    ok, _ = etcd.transaction(compare=[t.value("/t/x") == "doot"],
                             success=[t.put("/t/x", "again")],
                             failure=[t.delete("/t/x")])
    assert ok is False
    assert etcd.get("/t/x") == (None, None)
    ok, responses = etcd.transaction(
        compare=[], failure=[], success=[t.txn(compare=[t.version("/t/x") == 0],
                                   success=[t.put("/t/y", "nested")], failure=[])])
    assert ok is True and responses[0].response_txn.succeeded is True
    assert etcd.get("/t/y")[0] == b"nested"


def test_concurrent_compare_and_swap_counter(server):
    """Optimistic concurrency as Kubernetes does it: read, then Txn guarded by
    mod_revision. Exactly the successful swaps are counted; none is lost."""
    kv0 = server.kv()
    put(kv0, b"counter", b"0")
    threads, attempts = 4, 25
    wins = []
    lock = threading.Lock()

    def worker():
        with server.new_channel() as ch:
            kv = etcdrpc.KVStub(ch)
            for _ in range(attempts):
                (cur,) = kv.Range(etcdrpc.RangeRequest(key=b"counter"), timeout=10).kvs
                nxt = b"%d" % (int(cur.value) + 1)
                r = kv.Txn(T(compare=[cmp(b"counter", C.MOD, C.EQUAL, cur.mod_revision)],
                             success=[P(b"counter", nxt)], failure=[G(b"counter")]),
                           timeout=10)
                if r.succeeded:
                    with lock:
                        wins.append(r.header.revision)
                else:
                    # The failure branch saw a newer value than we read.
                    assert r.responses[0].response_range.kvs[0].mod_revision > cur.mod_revision

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    (final,) = kv0.Range(etcdrpc.RangeRequest(key=b"counter"), timeout=10).kvs
    assert int(final.value) == len(wins) >= attempts
    assert final.version == len(wins) + 1
    assert len(set(wins)) == len(wins)

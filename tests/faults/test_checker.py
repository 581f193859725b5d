"""The checker must be able to fail: a small clean history passes, and each
doctored copy of it (a lost acknowledged write, a stale read, a watcher gap
or duplicate, a HashKV mismatch, ...) is caught as the right violation.

Run: /usr/bin/python3 -m pytest -q tests/faults/test_checker.py
"""

import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checker  # noqa: E402

MEMBERS = ("m0", "m1", "m2")


def _op(t, rev, **kw):
    r = {"proc": "w0", "member": "m0", "invoke": t, "complete": t + 0.5, "status": "ok",
         "rev": rev}
    r.update(kw)
    return r


def clean():
    """A history of a healthy run: puts, a delete, a txn, an unknown put that
    was applied, reads after each write, a watcher that reconnected once."""
    recs = [{"type": "meta", "seed": 0}]
    events = []
    t = 0.0
    for i in range(5):                                  # revisions 2..6
        key, val = "f/w0/%06d" % i, "w0.%d" % i
        recs.append(_op(t, 2 + i, type="put", key=key, value=val))
        events.append([2 + i, "put", key, val])
        recs.append(_op(t + 1, 2 + i, type="read", proc="r0", member=MEMBERS[i % 3],
                        key=key, range_end="", kvs=[[key, val, 2 + i]]))
        t += 2
    recs.append(_op(t, 7, type="delete", key="f/w0/000001", deleted=1))
    events.append([7, "del", "f/w0/000001", ""])
    t += 2
    recs.append(_op(t, 7, type="read", proc="r1", key="f/w0/", range_end="f/w00",
                    kvs=[["f/w0/%06d" % i, "w0.%d" % i, 2 + i] for i in (0, 2, 3, 4)]))
    t += 2
    keys, vals = ["f/w1/000000", "f/w1/000001"], ["w1.0", "w1.1"]
    recs.append(_op(t, 8, type="txn", proc="w1", keys=keys, values=vals, succeeded=True))
    events += [[8, "put", keys[0], vals[0]], [8, "put", keys[1], vals[1]]]
    t += 2
    # Timed out, but applied: allowed once, at a revision after its invoke.
    recs.append(_op(t, None, type="put", proc="w2", key="f/w2/000000", value="w2.0",
                    status="unknown", error="DEADLINE_EXCEEDED"))
    events.append([9, "put", "f/w2/000000", "w2.0"])
    # Failed and not applied.
    recs.append(_op(t, None, type="put", proc="w2", key="f/w2/000001", value="w2.1",
                    status="fail", error="UNAVAILABLE"))
    t += 5
    recs.append(_op(t, 10, type="put", proc="fence", key="f/~fence-wa0", value="wa0"))
    events.append([10, "put", "f/~fence-wa0", "wa0"])
    recs.append({"type": "watch_target", "proc": "wa0", "rev": 10})
    # The watcher reconnects after revision 6 from 7.
    recs.append({"type": "watch_start", "proc": "wa0", "member": "m1", "prefix": "f/",
                 "start_rev": 1, "t": 0})
    recs.append({"type": "watch_events", "proc": "wa0", "member": "m1",
                 "events": [e for e in events if e[0] <= 6], "t": 11})
    recs.append({"type": "watch_start", "proc": "wa0", "member": "m2", "prefix": "f/",
                 "start_rev": 7, "t": 12})
    recs.append({"type": "watch_events", "proc": "wa0", "member": "m2",
                 "events": [e for e in events if e[0] > 6], "t": 30})
    final = {}
    for rev, kind, key, val in events:
        if kind == "put":
            final[key] = [key, val, rev]
        else:
            final.pop(key)
    for m in MEMBERS:
        recs.append({"type": "final_range", "member": m, "rev": 10,
                     "kvs": [final[k] for k in sorted(final)]})
        recs.append({"type": "hashkv", "member": m, "rev": 10, "hash": 12345,
                     "compact_revision": 0})
        recs.append({"type": "final_events", "member": m, "rev": 10,
                     "events": copy.deepcopy(events)})
    return recs


def find(recs, **kw):
    return [r for r in recs if all(r.get(k) == v for k, v in kw.items())]


def kinds(recs):
    res = checker.check(recs)
    assert not res.ok, "the checker passed a doctored history"
    return res.kinds()


def test_clean_history_passes():
    res = checker.check(clean())
    assert res.ok, res.report()
    assert res.stats["writes_ok"] == 8 and res.stats["reads_ok"] == 6
    assert res.stats["watch_events"] == 10


def test_acknowledged_write_missing_on_one_member():
    recs = clean()
    fr = find(recs, type="final_range", member="m2")[0]
    fr["kvs"] = [kv for kv in fr["kvs"] if kv[0] != "f/w0/000003"]
    assert "lost acknowledged write" in kinds(recs)


def test_acknowledged_write_lost_everywhere():
    recs = clean()
    for f in find(recs, type="final_events"):
        f["events"] = [e for e in f["events"] if e[0] != 4]
    for fr in find(recs, type="final_range"):
        fr["kvs"] = [kv for kv in fr["kvs"] if kv[2] != 4]
    k = kinds(recs)
    assert "lost acknowledged write" in k and "history has holes" in k


def test_acknowledged_write_at_another_revision():
    recs = clean()
    find(recs, type="put", key="f/w0/000004")[0]["rev"] = 5
    k = kinds(recs)
    assert "lost acknowledged write" in k and "revision reused" in k


def test_acknowledged_delete_undone():
    recs = clean()
    for f in find(recs, type="final_events"):
        f["events"] = [e for e in f["events"] if e[1] != "del"]
    assert "lost acknowledged write" in kinds(recs)


def test_stale_read():
    recs = clean()
    # A read of the key written at revision 6, started after that write was
    # acknowledged, answering from revision 5 (before the write).
    r = find(recs, type="read", key="f/w0/000004")[0]
    r.update(rev=5, kvs=[])
    assert "stale read" in kinds(recs)


def test_read_with_wrong_value():
    recs = clean()
    find(recs, type="read", key="f/w0/000002")[0]["kvs"] = [["f/w0/000002", "w0.9", 4]]
    assert kinds(recs) == ["read disagrees with history"]


def test_read_revision_goes_backwards():
    recs = clean()
    # A second read after the prefix read, on another member, at revision 6:
    # it sees the right data for revision 6, but revision 7 was already read.
    r = copy.deepcopy(find(recs, type="read", key="f/w0/000004")[0])
    prefix_read = find(recs, type="read", key="f/w0/")[0]
    r.update(invoke=prefix_read["complete"] + 0.1, complete=prefix_read["complete"] + 0.2)
    recs.append(r)
    assert "read revision went backwards" in kinds(recs)


def test_watcher_gap():
    recs = clean()
    batch = find(recs, type="watch_events", member="m2")[0]
    batch["events"] = [e for e in batch["events"] if e[0] != 8]
    assert "watch gap" in kinds(recs)


def test_watcher_duplicate_after_reconnect():
    recs = clean()
    # Resumed at revision 6 instead of 7: revision 6 arrives twice.
    batch = find(recs, type="watch_events", member="m2")[0]
    batch["events"] = [[6, "put", "f/w0/000004", "w0.4"]] + batch["events"]
    assert "watch duplicate" in kinds(recs)


def test_watcher_out_of_order():
    recs = clean()
    batch = find(recs, type="watch_events", member="m1")[0]
    batch["events"][1], batch["events"][2] = batch["events"][2], batch["events"][1]
    assert "watch out of order" in kinds(recs)


def test_hashkv_mismatch():
    recs = clean()
    find(recs, type="hashkv", member="m1")[0]["hash"] = 999
    assert kinds(recs) == ["hashkv mismatch"]


def test_members_disagree():
    recs = clean()
    f = find(recs, type="final_events", member="m1")[0]
    f["events"][3][3] = "other"
    assert "members disagree" in kinds(recs)


def test_unknown_write_applied_twice():
    recs = clean()
    for f in find(recs, type="final_events"):
        f["events"].insert(-1, [10, "put", "f/w2/000000", "w2.0"])
        f["events"][-1][0] = 11
        f["rev"] = 11
    assert "write applied twice" in kinds(recs)


def test_write_before_an_acknowledged_one_it_followed():
    recs = clean()
    # The timed-out put (revision 9) claims to have been sent after the
    # fence (revision 10) was acknowledged: it cannot then be before it.
    fence = find(recs, type="put", key="f/~fence-wa0")[0]
    late = find(recs, type="put", key="f/w2/000000")[0]
    late.update(invoke=fence["complete"] + 1, complete=fence["complete"] + 2)
    assert kinds(recs) == ["write out of real-time order"]


def test_problem_records_fail_the_run():
    recs = clean()
    recs.append({"type": "problem", "what": "m1 exited on its own (status -6)"})
    assert kinds(recs) == ["problem"]

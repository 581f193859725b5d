"""The checker of a fault run's history (history.py's records).

Reference: the store history every member reports after healing (a Watch
from revision 1 over the whole test key space, the "final_events" records).
All members must report the same history, with every revision from 2 to the
final one (the tests write nothing else). Against it:

(a) writes: every acknowledged put/txn/delete is in the history at the
    revision it was acknowledged with, with its key and value, and is in
    every member's final Range (unless a later delete removed it); no value is
    applied twice; an unacknowledged write that was applied has a revision
    above every write acknowledged before it was sent; acknowledged writes
    are ordered by revision in real time.
(b) reads: a read invoked after a write (or another read) completed has a
    header revision >= that write's revision (that read's revision), and
    returns exactly the keys, values and mod revisions the history holds at
    its header revision.
(c) watchers: the concatenated events a watcher received equal the history's
    events on its prefix from its first start revision up to its fence:
    every revision once, in order, no gap, nothing extra.
(d) HashKV at the common final revision is equal on every member.

Records of type "problem" (a member that crashed or did not recover, a
watcher that never reached its fence) are violations too.
"""

import bisect
import sys
from collections import defaultdict


class Result:
    def __init__(self):
        self.violations = []
        self.stats = {}

    @property
    def ok(self):
        return not self.violations

    def add(self, kind, msg):
        self.violations.append((kind, msg))

    def kinds(self):
        return sorted({k for k, _ in self.violations})

    def brief(self):
        s = self.stats
        return ("%d writes (%d acknowledged), %d reads, %d watch events, %d revisions, "
                "%d violations" % (s.get("writes", 0), s.get("writes_ok", 0),
                                   s.get("reads_ok", 0), s.get("watch_events", 0),
                                   s.get("revisions", 0), len(self.violations)))

    def report(self, limit=15):
        lines = []
        by_kind = defaultdict(list)
        for k, m in self.violations:
            by_kind[k].append(m)
        for k in sorted(by_kind):
            ms = by_kind[k]
            lines.append("%s: %d" % (k, len(ms)))
            lines += ["  " + m for m in ms[:limit]]
            if len(ms) > limit:
                lines.append("  ... %d more" % (len(ms) - limit))
        return "\n".join(lines)


class Store:
    """The reference history: events per revision and per key."""

    def __init__(self, events):
        self.events = [tuple(e) for e in events]       # (rev, kind, key, value)
        self.by_key = defaultdict(list)                 # key -> [(rev, kind, value)]
        self.by_rev = defaultdict(list)
        for rev, kind, key, value in self.events:
            self.by_key[key].append((rev, kind, value))
            self.by_rev[rev].append((kind, key, value))
        self.keys = sorted(self.by_key)
        self.last = self.events[-1][0] if self.events else 1

    def get(self, key, rev):
        """(value, mod_revision) of key at rev, or None if absent."""
        evs = self.by_key.get(key)
        if not evs:
            return None
        i = bisect.bisect_right(evs, (rev, "\uffff")) - 1
        if i < 0 or evs[i][1] == "del":
            return None
        return evs[i][2], evs[i][0]

    def range(self, key, end, rev):
        """[[key, value, mod_revision]] of [key, end) at rev (end "" = key)."""
        if not end:
            got = self.get(key, rev)
            return [[key, got[0], got[1]]] if got else []
        out = []
        for k in self.keys[bisect.bisect_left(self.keys, key):bisect.bisect_left(self.keys, end)]:
            got = self.get(k, rev)
            if got:
                out.append([k, got[0], got[1]])
        return out


def _prefix_max(items):
    """items: [(complete, rev)] -> (sorted completes, running max of rev)."""
    items = sorted(items)
    completes, maxes, m = [], [], 0
    for c, r in items:
        m = max(m, r)
        completes.append(c)
        maxes.append(m)
    return completes, maxes


def _max_before(index, t):
    """Largest rev among operations completed strictly before time t."""
    completes, maxes = index
    i = bisect.bisect_left(completes, t)
    return maxes[i - 1] if i > 0 else 0


def _written(w):
    """[(key, value)] a write puts; deletes put nothing."""
    if w["type"] == "put":
        return [(w["key"], w["value"])]
    if w["type"] == "txn":
        return list(zip(w["keys"], w["values"]))
    return []


def check(records):
    res = Result()
    by_type = defaultdict(list)
    for r in records:
        by_type[r["type"]].append(r)
    for p in by_type["problem"]:
        res.add("problem", p["what"])

    store = _check_reference(res, by_type)
    writes = by_type["put"] + by_type["txn"] + by_type["delete"]
    ok_writes = [w for w in writes if w["status"] == "ok"]
    res.stats.update(writes=len(writes), writes_ok=len(ok_writes),
                     reads=len(by_type["read"]))
    if store is not None:
        _check_writes(res, store, writes, ok_writes, by_type["final_range"])
        _check_reads(res, store, ok_writes, by_type["read"])
        _check_watchers(res, store, by_type)
    _check_hashes(res, by_type["hashkv"])
    res.stats["ops_checked"] = (res.stats["writes"] + res.stats.get("reads_ok", 0)
                                + res.stats.get("watch_events", 0))
    return res


def _check_reference(res, by_type):
    finals = by_type["final_events"]
    if not finals:
        res.add("no final state", "no member's final history was recorded")
        return None
    ref = finals[0]
    for f in finals[1:]:
        if f["events"] != ref["events"]:
            a, b = ref["events"], f["events"]
            i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            res.add("members disagree",
                    "%s and %s report different histories from event %d: %s vs %s"
                    % (ref["member"], f["member"], i, a[i] if i < len(a) else "end",
                       b[i] if i < len(b) else "end"))
    store = Store(ref["events"])
    revs = sorted(store.by_rev)
    res.stats["revisions"] = len(revs)
    want = ref["rev"]
    if revs != list(range(2, want + 1)):
        have = set(revs)
        holes = [r for r in range(2, want + 1) if r not in have][:10]
        res.add("history has holes", "%s's history lacks revisions %s (final revision %d)"
                % (ref["member"], holes, want))
    seen = {}
    for rev, kind, key, value in store.events:
        if kind == "put":
            if value in seen:
                res.add("write applied twice", "value %r of %s is at revisions %d and %d"
                        % (value, key, seen[value], rev))
            seen[value] = rev
    store.value_rev = seen
    for fr in by_type["final_range"]:
        want_kvs = store.range("f/", "f0", fr["rev"])
        if fr["kvs"] != want_kvs:
            _diff(res, "final range differs", "%s's final Range at revision %d"
                  % (fr["member"], fr["rev"]), fr["kvs"], want_kvs)
    return store


def _diff(res, kind, what, got, want):
    g = {k: (v, r) for k, v, r in got}
    w = {k: (v, r) for k, v, r in want}
    missing = sorted(set(w) - set(g))
    extra = sorted(set(g) - set(w))
    wrong = sorted(k for k in set(g) & set(w) if g[k] != w[k])
    parts = []
    if missing:
        parts.append("missing %s" % [(k,) + w[k] for k in missing[:5]])
    if extra:
        parts.append("unexpected %s" % [(k,) + g[k] for k in extra[:5]])
    if wrong:
        parts.append("wrong %s" % ["%s: got %s want %s" % (k, g[k], w[k]) for k in wrong[:5]])
    if not parts:
        parts.append("same keys, different order")
    res.add(kind, "%s: %s" % (what, "; ".join(parts)))


def _check_writes(res, store, writes, ok_writes, final_ranges):
    # Acknowledged writes: in the history at their revision.
    at_rev = {}
    for w in ok_writes:
        rev = w["rev"]
        desc = "%s %s by %s via %s, acknowledged at revision %d (t=%.3f..%.3f)" % (
            w["type"], w.get("key") or w.get("keys"), w["proc"], w["member"], rev,
            w["invoke"], w["complete"])
        if w["type"] == "txn" and not w.get("succeeded"):
            res.add("txn failed its compare", desc + ": its keys existed before it")
            continue
        if w["type"] == "delete":
            if w.get("deleted") != 1:
                res.add("delete found nothing", desc + ": deleted=%s" % w.get("deleted"))
            elif ("del", w["key"]) not in {(k, key) for k, key, _ in store.by_rev.get(rev, [])}:
                res.add("lost acknowledged write", desc + ": no such delete in the history")
        for key, value in _written(w):
            if ("put", key, value) not in store.by_rev.get(rev, []):
                where = store.value_rev.get(value)
                res.add("lost acknowledged write", desc + ": history has %s" % (
                    "it at revision %d" % where if where else "no such put"))
        if rev in at_rev:
            res.add("revision reused", "%s and %s both acknowledged at revision %d"
                    % (at_rev[rev], desc, rev))
        at_rev[rev] = desc

    # Every member's final Range holds every acknowledged put not deleted since.
    for fr in final_ranges:
        have = {k: (v, r) for k, v, r in fr["kvs"]}
        for w in ok_writes:
            for key, value in _written(w):
                if store.get(key, fr["rev"]) is None and any(
                        kind == "del" and rev > w["rev"] for rev, kind, _ in store.by_key[key]):
                    continue        # deleted later: absent is right
                if have.get(key) != (value, w["rev"]):
                    res.add("lost acknowledged write",
                            "%s: %s=%r acknowledged at revision %d by %s; final Range has %s"
                            % (fr["member"], key, value, w["rev"], w["proc"], have.get(key)))

    # Real time: a write sent after another was acknowledged comes later.
    index = _prefix_max([(w["complete"], w["rev"]) for w in ok_writes])
    for w in writes:
        before = _max_before(index, w["invoke"])
        if w["status"] == "ok":
            rev = w["rev"]
        else:
            revs = [store.value_rev[v] for _, v in _written(w) if v in store.value_rev]
            if not revs:
                continue    # not applied (or a delete: nothing to place it by)
            rev = min(revs)
        if rev <= before:
            res.add("write out of real-time order",
                    "%s %s by %s (%s) got revision %d, but revision %d was acknowledged "
                    "before it was sent at t=%.3f" % (w["type"], w.get("key") or w.get("keys"),
                                                      w["proc"], w["status"], rev, before,
                                                      w["invoke"]))


def _check_reads(res, store, ok_writes, reads):
    ok_reads = [r for r in reads if r["status"] == "ok"]
    res.stats["reads_ok"] = len(ok_reads)
    w_index = _prefix_max([(w["complete"], w["rev"]) for w in ok_writes])
    r_index = _prefix_max([(r["complete"], r["rev"]) for r in ok_reads])
    for r in ok_reads:
        desc = "read %s%s by %s on %s at t=%.3f..%.3f, header revision %d" % (
            r["key"], ".." + r["range_end"] if r["range_end"] else "", r["proc"], r["member"],
            r["invoke"], r["complete"], r["rev"])
        wmax = _max_before(w_index, r["invoke"])
        if r["rev"] < wmax:
            res.add("stale read", "%s: revision %d was acknowledged before it started"
                    % (desc, wmax))
        rmax = _max_before(r_index, r["invoke"])
        if r["rev"] < rmax:
            res.add("read revision went backwards",
                    "%s: an earlier read (completed before it started) saw revision %d"
                    % (desc, rmax))
        if r["rev"] > store.last:
            res.add("read from the future", "%s: the history ends at revision %d"
                    % (desc, store.last))
            continue
        want = store.range(r["key"], r["range_end"], r["rev"])
        if r["kvs"] != want:
            _diff(res, "read disagrees with history", desc, r["kvs"], want)


def _check_watchers(res, store, by_type):
    starts, events, targets = defaultdict(list), defaultdict(list), {}
    for s in by_type["watch_start"]:
        starts[s["proc"]].append(s)
    for e in by_type["watch_events"]:
        events[e["proc"]].extend(tuple(x) for x in e["events"])
    for t in by_type["watch_target"]:
        targets[t["proc"]] = t["rev"]
    for c in by_type["watch_cancel"]:
        res.add("watch canceled", "%s on %s: %s" % (c["proc"], c["member"], c["reason"]))
    total = 0
    for proc, ss in sorted(starts.items()):
        prefix, first = ss[0]["prefix"], ss[0]["start_rev"]
        last = targets.get(proc)
        if last is None:
            res.add("watcher without fence", "%s has no target revision" % proc)
            continue
        # A watcher may read a little past its fence before it stops: the
        # window checked ends at the fence.
        got = [e for e in events[proc] if e[0] <= last]
        total += len(got)
        want = [e for e in store.events if e[2].startswith(prefix) and first <= e[0] <= last]
        if got == want:
            continue
        i = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                 min(len(got), len(want)))
        g = got[i] if i < len(got) else None
        w = want[i] if i < len(want) else None
        if g is not None and g in got[:i]:
            kind = "watch duplicate"
        elif g is not None and (w is None or g[0] < w[0]):
            kind = "watch out of order" if g in want else "watch event not in history"
        elif w is not None and w in got[i:]:
            kind = "watch out of order"
        else:
            kind = "watch gap"
        res.add(kind, "%s on prefix %s from revision %d: event %d is %s, history says %s "
                "(%d events received, %d expected up to revision %d)"
                % (proc, prefix, first, i, g, w, len(got), len(want), last))
    res.stats["watch_events"] = total


def _check_hashes(res, hashes):
    if not hashes:
        res.add("no final state", "no HashKV was recorded")
        return
    revs = {h["rev"] for h in hashes}
    values = {(h["hash"], h["compact_revision"]) for h in hashes}
    if len(revs) != 1 or len(values) != 1:
        res.add("hashkv mismatch", "; ".join("%s: hash %d at revision %d (compact %d)"
                                             % (h["member"], h["hash"], h["rev"],
                                                h["compact_revision"]) for h in hashes))


if __name__ == "__main__":
    import history
    result = check(history.load(sys.argv[1]))
    print(result.brief())
    if not result.ok:
        print(result.report())
    sys.exit(0 if result.ok else 1)

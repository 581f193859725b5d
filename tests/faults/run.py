"""One seeded fault run, and the command line for many:

    METAD_BIN=build/metad /usr/bin/python3 tests/faults/run.py --runs 200 [--seed 1] [--duration 20]

A run starts 3 members behind peer-link proxies, runs writers, readers and
watchers for `duration` seconds while the nemesis injects faults, heals,
waits for the members to converge, records the final state of every member
into the history, and hands the history to the checker. The history and the
server logs are kept when a run fails (METAD_FAULTS_KEEP=1 keeps them always).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import grpc
from etcd3 import etcdrpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import checker  # noqa: E402
import clients  # noqa: E402
import cluster  # noqa: E402
import harness  # noqa: E402
import history  # noqa: E402
import nemesis  # noqa: E402
import watchstream  # noqa: E402

WRITERS = ("w0", "w1", "w2")
FINAL_DEADLINE = 30.0


def _retry(fn, deadline=FINAL_DEADLINE):
    """fn() until it does not raise grpc.RpcError, within the deadline."""
    end = time.monotonic() + deadline
    while True:
        try:
            return fn()
        except grpc.RpcError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)  # poll interval


def _final_events(m, rev):
    """Every event of the test's key space on member m, from revision 1 to
    rev, read through a Watch (nothing is compacted during a run)."""
    with m.new_channel() as ch:
        ws = watchstream.WatchStream(ch, timeout=FINAL_DEADLINE)
        try:
            ws.create(b"f/", history.prefix_end("f/").encode(), start_revision=1)
            out = []
            end = time.monotonic() + FINAL_DEADLINE
            while (not out or out[-1][0] < rev) and time.monotonic() < end:
                r = ws.recv(timeout=max(0.1, end - time.monotonic()))
                out.extend(history.event(e) for e in r.events)
            return out
        finally:
            ws.close()


def _final_state(c, rec):
    rev = c.wait_converged(FINAL_DEADLINE)
    for m in c.members:
        with m.new_channel() as ch:
            kv = etcdrpc.KVStub(ch)
            r = _retry(lambda: kv.Range(etcdrpc.RangeRequest(
                key=b"f/", range_end=history.prefix_end("f/").encode()), timeout=10))
            rec.write({"type": "final_range", "member": m.name, "rev": r.header.revision,
                       "kvs": [[x.key.decode(), x.value.decode(), x.mod_revision]
                               for x in r.kvs]})
            h = _retry(lambda: etcdrpc.MaintenanceStub(ch).HashKV(
                etcdrpc.HashKVRequest(revision=rev), timeout=10))
            rec.write({"type": "hashkv", "member": m.name, "rev": rev, "hash": h.hash,
                       "compact_revision": h.compact_revision})
        rec.write({"type": "final_events", "member": m.name, "rev": rev,
                   "events": _final_events(m, rev)})
    return rev


def _fence(c, rec, w):
    """A write to the watcher's prefix after the run: the watcher is done
    once it has seen it, so every earlier event must have reached it."""
    key = w.prefix + "~fence-" + w.cname
    m = c.members[0]
    with m.new_channel() as ch:
        kv = etcdrpc.KVStub(ch)
        t = rec.now()
        r = _retry(lambda: kv.Put(etcdrpc.PutRequest(key=key.encode(), value=w.cname.encode()),
                                  timeout=10))
    rec.write({"type": "put", "proc": "fence", "member": m.name, "key": key,
               "value": w.cname, "invoke": t, "complete": rec.now(), "status": "ok",
               "rev": r.header.revision})
    rec.write({"type": "watch_target", "proc": w.cname, "rev": r.header.revision})
    w.target_rev = r.header.revision


def _crash(m):
    return "%s exited on its own (status %s); its log ends:\n%s" % (
        m.name, m.proc.returncode, m.log_tail(1500))


def run_once(seed, duration=20.0, workdir=None):
    """Returns (checker.Result, workdir, summary dict)."""
    workdir = workdir or tempfile.mkdtemp(prefix="metad-faults-%s-" % seed)
    rec = history.Recorder(os.path.join(workdir, "history.jsonl"))
    plan = nemesis.schedule(seed, duration)
    rec.write({"type": "meta", "seed": seed, "duration": duration, "wall_start": rec.wall0,
               "binary": harness.METAD_BIN, "plan": plan})
    c = cluster.FaultCluster(workdir)
    shared = clients.Shared()
    problems = []
    threads = []
    nem = None
    try:
        c.start()
        # A little history before the watchers start, so one of them can
        # start from a revision in the middle of it.
        kv = etcdrpc.KVStub(c.members[0].channel())
        for i in range(4):
            key, val = "f/init/%d" % i, "init.%d" % i
            t = rec.now()
            r = _retry(lambda: kv.Put(etcdrpc.PutRequest(key=key.encode(), value=val.encode()),
                                      timeout=10))
            rec.write({"type": "put", "proc": "init", "member": "m0", "key": key,
                       "value": val, "invoke": t, "complete": rec.now(), "status": "ok",
                       "rev": r.header.revision})
        mid = r.header.revision - 1
        writers = [clients.Writer(n, c.members, rec, shared, seed) for n in WRITERS]
        readers = [clients.Reader(n, c.members, rec, shared, seed, writers=WRITERS)
                   for n in ("r0", "r1")]
        watchers = [clients.Watcher("wa0", c.members, rec, shared, seed, prefix="f/", start_rev=1),
                    clients.Watcher("wa1", c.members, rec, shared, seed, prefix="f/",
                                    start_rev=mid),
                    clients.Watcher("wa2", c.members, rec, shared, seed, prefix="f/w1/",
                                    start_rev=1)]
        threads = writers + readers + watchers
        nem = nemesis.Nemesis(c, rec, plan)
        for t in threads:
            t.start()
        nem.t_base = rec.now()          # schedule times count from here
        nem.end = nem.t_base + duration - 0.5
        nem.start()
        shared.stop.wait(duration)      # the length of the run
        shared.stop.set()
        for t in writers + readers:
            t.join(timeout=clients.WRITE_TIMEOUT + 10)
        nem.join(timeout=nemesis.RECOVER_DEADLINE + 10)
        if nem.is_alive():
            nem.abort.set()
            nem.join(timeout=10)
            problems.append("the nemesis did not finish its schedule in time")
        problems += nem.problems
        if nem.error:
            problems.append("nemesis error: " + nem.error)
        # Heal whatever is left (after a liveness failure) before judging data.
        c.heal()
        for m in c.members:
            c.cont(m)
            if not m.running():
                if m.died_unexpectedly():
                    problems.append(_crash(m))
                c.restart(m)
        try:
            for w in watchers:
                _fence(c, rec, w)
            end = time.monotonic() + FINAL_DEADLINE
            for w in watchers:
                w.join(timeout=max(0.1, end - time.monotonic()))
                if w.is_alive():
                    problems.append("watcher %s did not reach revision %d within %.0fs"
                                    % (w.cname, w.target_rev, FINAL_DEADLINE))
            _final_state(c, rec)
        except (grpc.RpcError, harness.ServerError) as e:
            problems.append("final state could not be read: %s" % (e,))
        for t in threads:
            if t.error:
                problems.append("client %s failed: %s" % (t.cname, t.error))
        for m in c.members:
            if m.died_unexpectedly():
                problems.append(_crash(m))
    finally:
        for t in threads:
            if isinstance(t, clients.Watcher):
                t.hard_stop.set()
        if nem is not None:
            nem.abort.set()
        shared.stop.set()
        c.close()
        # Nothing may write to the history once it is closed.
        for t in threads + ([nem] if nem else []):
            if t.ident is not None:         # started
                t.join(timeout=10)
            if t.is_alive():
                problems.append("thread %s did not stop" % t.name)
        for p in problems:
            rec.write({"type": "problem", "what": p})
        # For reading a failed run: how often each proxy refused a blocked link.
        rec.write({"type": "proxy", "stats": {
            p.dst: {"accepted": p.accepted, "refused": p.refused,
                    "unidentified": p.unidentified} for p in c.proxies.values()}})
        rec.close()
    res = checker.check(history.load(rec.path))
    summary = {"seed": seed, "faults": nem.applied if nem else [],
               "refused": sum(p.refused for p in c.proxies.values()),
               # Members that caught up by installing the leader's store.
               "installs": sum(m.log_text().count("installed snapshot at index")
                               for m in c.members)}
    return res, workdir, summary


def describe_faults(applied):
    """"kill m0 (leader), pause m2, ..." from Nemesis.applied."""
    return ", ".join("%s %s%s" % (kind, name, " (leader)" if target == "leader" else "")
                     for kind, target, name in applied) or "none"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("FAULT_RUNS", "1")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FAULT_SEED", "1")),
                    help="first seed; run i uses seed + i")
    ap.add_argument("--duration", type=float,
                    default=float(os.environ.get("FAULT_DURATION", "20")))
    args = ap.parse_args()
    keep = os.environ.get("METAD_FAULTS_KEEP") == "1"
    failed, ops, installs, t_all = [], 0, 0, time.monotonic()
    for i in range(args.runs):
        seed = args.seed + i
        t = time.monotonic()
        try:
            res, wd, summ = run_once(seed, args.duration)
        except Exception as e:     # e.g. the cluster never started: a failed run
            failed.append(seed)
            print("seed %d: FAILED in %.1fs: %r" % (seed, time.monotonic() - t, e), flush=True)
            continue
        ops += res.stats.get("ops_checked", 0)
        installs += summ["installs"]
        faults = describe_faults(summ["faults"])
        if res.ok:
            print("seed %d: ok in %.1fs, %s, %d snapshot installs; faults %s"
                  % (seed, time.monotonic() - t, res.brief(), summ["installs"], faults),
                  flush=True)
            if not keep:
                shutil.rmtree(wd, ignore_errors=True)
        else:
            failed.append(seed)
            print("seed %d: FAILED in %.1fs, %s; faults %s; history and logs in %s\n%s"
                  % (seed, time.monotonic() - t, res.brief(), faults, wd, res.report()),
                  flush=True)
    print("faults summary: %d runs, %d passed, %d failed%s, %d operations checked, "
          "%d snapshot installs, %.0fs"
          % (args.runs, args.runs - len(failed), len(failed),
             (" (seeds %s)" % " ".join(map(str, failed))) if failed else "", ops, installs,
             time.monotonic() - t_all), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

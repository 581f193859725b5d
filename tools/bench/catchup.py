"""Time a new learner's catch-up on a 3-member cluster, as make bench's
phase C row, on its own:

    /usr/bin/python3 tools/bench/catchup.py KEYS BINARY   # build/metad or /usr/bin/etcd

Starts 3 members of BINARY on loopback (tests/e2e/harness.py, etcd's flags),
loads KEYS sequential keys of 256 B with metad-bench (1,000 clients), adds a
learner (etcdctl member add --learner) and prints the time from its launch
until its applied index reaches the leader's raft index at the add, with
the leader's and the learner's CPU time over that span.
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEYS, BIN = int(sys.argv[1]), os.path.abspath(sys.argv[2])
os.environ["METAD_BIN"] = BIN
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "tools", "bench"))
import harness  # noqa: E402
from applied_wait import applied  # noqa: E402


def status(port):  # the leader's raft index: once, before the clock starts
    out = subprocess.run(["etcdctl", "--endpoints", "127.0.0.1:%d" % port, "--command-timeout",
                          "2s", "endpoint", "status", "-w", "json"], capture_output=True,
                         text=True, env=dict(os.environ, ETCDCTL_API="3"))
    return json.loads(out.stdout)[0]["Status"] if out.returncode == 0 else None


def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


c = harness.Cluster(harness.new_workdir(), size=3).start()
try:
    leader = c.leader()
    subprocess.run([os.path.join(ROOT, "build", "metad-bench"), "put", "--endpoints",
                    "127.0.0.1:%d" % leader.client_port, "--key-size", "16", "--val-size", "256",
                    "--sequential-keys", "--key-space-size", str(KEYS), "--total", str(KEYS),
                    "--clients", "1000", "--conns", "100", "--no-progress", "--json"],
                   stdout=subprocess.DEVNULL, check=False)
    last = status(leader.client_port)["raftIndex"]
    l0 = cpu(leader.proc.pid)
    t0 = time.monotonic()
    m = c.add_member(learner=True, via=leader)
    while applied(m.client_port) < last:
        time.sleep(0.05)  # poll interval
    print("%s: caught up %d keys in %.2fs; leader cpu %.2fs, learner cpu %.2fs"
          % (os.path.basename(BIN), KEYS, time.monotonic() - t0, cpu(leader.proc.pid) - l0,
             cpu(m.proc.pid)))
finally:
    for m in c.members:
        m.stop()

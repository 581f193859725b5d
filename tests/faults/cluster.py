"""A 3-member metad cluster on loopback whose peer links run through the
proxies of proxy.py, with the faults the nemesis injects: kill -9 and restart
on the same data dir, SIGSTOP/SIGCONT, and partitions of one member.

Members are harness.Server processes (etcd's flags, setpriv --pdeathsig so a
killed test never leaves servers behind); only the peer URLs differ: each
member listens on its real peer port and advertises its proxy's port.
"""

import os
import queue
import shutil
import signal
import sys
import threading
import time

import grpc
from etcd3 import etcdrpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402

import proxy  # noqa: E402

# etcd's defaults (100 ms heartbeat, 1 s election timeout): faults are timed
# against them.
READY_DEADLINE = 30.0


class Member(harness.Server):
    """A harness.Server that advertises its proxy's port to its peers."""

    proxy_port = None

    def argv(self):
        args = super().argv()
        i = args.index("--initial-advertise-peer-urls")
        args[i + 1] = "http://127.0.0.1:%d" % self.proxy_port
        return args

    def pid(self):
        return self.proc.pid if self.running() else None


class _Spawner(threading.Thread):
    """Starts member processes from one thread that lives as long as the
    cluster: setpriv's parent-death signal fires when the *thread* that forked
    the child exits, so a member restarted from a short-lived thread (the
    nemesis) would be killed with it."""

    def __init__(self):
        super().__init__(daemon=True, name="spawner")
        self.q = queue.Queue()
        self.start()

    def run(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            fn, done, out = item
            try:
                fn()
            except Exception as e:
                out.append(e)
            done.set()

    def call(self, fn):
        done, out = threading.Event(), []
        self.q.put((fn, done, out))
        done.wait()
        if out:
            raise out[0]

    def stop(self):
        self.q.put(None)
        self.join(timeout=10)


class FaultCluster:
    def __init__(self, workdir, size=3, token="faults"):
        self.workdir = workdir
        self.links = proxy.Links()
        self.members = []
        for i in range(size):
            # Snapshots often, few entries kept behind them: a member
            # killed, paused or cut off for a while is sent the leader's
            # store, so installs happen under faults too.
            m = Member(os.path.join(workdir, "m%d" % i), name="m%d" % i,
                       extra_args=["--initial-cluster-token", token,
                                   "--snapshot-count", "100",
                                   "--experimental-snapshot-catchup-entries", "20"])
            os.makedirs(m.workdir, exist_ok=True)
            m.pick_ports()
            self.members.append(m)
        self.proxies = {}
        for m in self.members:
            p = proxy.Proxy(self.links, m.name, m.peer_port, self.pids)
            self.proxies[m.name] = p
            m.proxy_port = p.port
        spec = ",".join("%s=http://127.0.0.1:%d" % (m.name, m.proxy_port) for m in self.members)
        for m in self.members:
            m.initial_cluster = spec
        self.paused = set()
        self.spawner = _Spawner()
        self.by_name = {m.name: m for m in self.members}

    def pids(self):
        return {m.name: m.pid() for m in self.members}

    # -- lifecycle ---------------------------------------------------------
    def start(self, attempts=3):
        """Start all members at once (a new cluster needs a quorum to elect a
        leader) and wait until each serves. Client and real peer ports were
        free a moment ago; if another process took one meanwhile, the member
        gets new ones and the cluster starts afresh (peers know it only by
        its proxy's port, which stays)."""
        for attempt in range(attempts):
            for m in self.members:
                self.restart(m)
            try:
                for m in self.members:
                    self.wait_serving(m)
                return self
            except harness.ServerError:
                clash = [m for m in self.members if not m.running()
                         and "address already in use" in m.log_text().lower()]
                if not clash or attempt == attempts - 1:
                    raise
                for m in self.members:
                    m.kill()
                    shutil.rmtree(m.data_dir, ignore_errors=True)
                for m in clash:
                    m.pick_ports()
                    self.proxies[m.name].upstream_port = m.peer_port

    def wait_serving(self, m, deadline=READY_DEADLINE):
        """Poll until m answers a linearizable read (it has a leader and has
        caught up far enough to serve)."""
        m.wait_ready(deadline)

    def close(self):
        """Kill everything (the fault test judges data, not shutdown)."""
        for m in self.members:
            self.cont(m)
            m.kill()
        for p in self.proxies.values():
            p.close()
        self.spawner.stop()

    # -- faults ------------------------------------------------------------
    def kill(self, m):
        self.cont(m)
        m.kill()

    def restart(self, m):
        """Start m again on its data dir and ports, without waiting."""
        def spawn():
            m._stopping = False
            m._spawn()
        self.spawner.call(spawn)

    def pause(self, m):
        if m.running():
            os.kill(m.proc.pid, signal.SIGSTOP)
            self.paused.add(m.name)

    def cont(self, m):
        if m.name in self.paused:
            self.paused.discard(m.name)
            if m.running():
                os.kill(m.proc.pid, signal.SIGCONT)

    def isolate(self, m, inbound=True, outbound=True):
        for o in self.members:
            if o is m:
                continue
            if outbound:
                self.links.block(m.name, o.name)
            if inbound:
                self.links.block(o.name, m.name)

    def heal(self):
        self.links.heal_all()

    # -- state -------------------------------------------------------------
    def status(self, m, timeout=1.0):
        with m.new_channel() as ch:
            return etcdrpc.MaintenanceStub(ch).Status(etcdrpc.StatusRequest(), timeout=timeout)

    def leader_name(self):
        """The member a running, unpaused member names as leader, or None."""
        ids = {}
        named = set()
        for m in self.members:
            if not m.running() or m.name in self.paused:
                continue
            try:
                st = self.status(m)
            except grpc.RpcError:
                continue
            ids[st.header.member_id] = m.name
            if st.leader:
                named.add(st.leader)
        for lid in named:
            if lid in ids:
                return ids[lid]
        return None

    def wait_converged(self, deadline=30.0):
        """After healing: poll until every member serves and all answer
        linearizable reads at the same revision. Returns that revision."""
        end = time.monotonic() + deadline
        for m in self.members:
            self.wait_serving(m, max(1.0, end - time.monotonic()))
        last = None
        while time.monotonic() < end:
            # A linearizable read answers once the member has applied the
            # commit index it learned from the leader, so equal header
            # revisions on all members (no writes in flight) = converged.
            try:
                revs = set()
                for m in self.members:
                    with m.new_channel() as ch:
                        r = etcdrpc.KVStub(ch).Range(
                            etcdrpc.RangeRequest(key=b"faults-converged-probe"), timeout=3.0)
                    revs.add(r.header.revision)
                if len(revs) == 1:
                    return revs.pop()
                last = revs
            except grpc.RpcError as e:
                last = e
            time.sleep(0.05)  # poll interval
        raise harness.ServerError("members did not converge after %.0fs: %s" % (deadline, last))

"""Process harness for the end-to-end tests: start/stop/restart a server binary
(metad, or etcd as the reference) on free loopback ports, and talk to it with
etcdctl 3.4, python3-etcd3 and raw gRPC stubs.

Nothing here sleeps for synchronisation: readiness and shutdown are polled
against a deadline.
"""

import base64
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import grpc
import etcd3
from etcd3 import etcdrpc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("METAD_SOURCE") or os.path.dirname(os.path.dirname(HERE))
METAD_BIN = os.path.abspath(os.environ.get("METAD_BIN") or os.path.join(REPO, "build", "metad"))
# An ASan build (set by ctest): its quarantine keeps freed memory resident, so
# RSS says nothing about what the server holds.
SANITIZED = os.environ.get("METAD_SANITIZED") == "1"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
# If the test process dies without teardown (e.g. killed by a ctest timeout), the
# kernel kills the server too: util-linux setpriv sets the parent-death signal.
SETPRIV = shutil.which("setpriv")

READY_DEADLINE = 20.0   # seconds for a fresh or restarted server to answer
STOP_DEADLINE = 20.0    # seconds between SIGTERM and SIGKILL
RPC_TIMEOUT = 10.0      # every gRPC call made by the tests has a deadline


def _binary_version(path):
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out


def _is_reference_etcd():
    return os.path.basename(METAD_BIN) == "etcd"


IS_REFERENCE_ETCD = _is_reference_etcd()
# etcd 3.4 is the only reference installed; a few assertions follow etcd 3.5
# (ETCD-COMPAT.md) where 3.4 differs, and are skipped against it.
IS_REFERENCE_ETCD_34 = IS_REFERENCE_ETCD and "etcd Version: 3.4." in _binary_version(METAD_BIN)


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_EPHEMERAL = _ephemeral_range()
_HANDED_OUT = {}
# Test processes run in parallel (ctest -j) and each picks its ports alone: a
# cluster picks all its members' ports before the first one binds, so a port
# that was free at the probe could be handed to a server of another test
# meanwhile (a CI run once saw a member refused by another test's cluster on
# its peer port). A port is therefore also claimed across processes by an
# flock on a file named for it, held until this process exits; the kernel
# drops the lock when it does, however it ends.
_PORT_LOCKS = os.path.join(tempfile.gettempdir(), "metad-test-ports")


def _claim(port):
    """True if no other test process holds port; then this one does."""
    os.makedirs(_PORT_LOCKS, exist_ok=True)
    fd = os.open(os.path.join(_PORT_LOCKS, str(port)), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _HANDED_OUT[port] = fd
    return True


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's
    ephemeral range: servers are restarted on the same ports, and a port in
    that range can meanwhile become the local end of some other process's
    outgoing connection, which makes the restart's bind fail. Never the same
    port twice in one test process, nor one another test process claimed: a
    port picked for a member that has not bound it yet is still free, and
    was once handed to a second member of the same cluster."""
    rng = random.Random()
    lo = 10000
    hi = _EPHEMERAL[0] - 1 if _EPHEMERAL[0] > lo + 1000 else 30000
    while True:
        port = rng.randint(lo, hi)
        # never a real etcd's defaults, never one handed out already
        if port in (2379, 2380) or port in _HANDED_OUT or not _claim(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue    # keep the claim: whoever holds it is not a test
        return port


def make_certs(outdir):
    """Run certs/make-certs.sh into outdir and return a dict of file paths."""
    script = os.path.join(REPO, "certs", "make-certs.sh")
    subprocess.run(["bash", script, outdir], check=True, timeout=60,
                   capture_output=True)
    names = ["ca", "ca-key", "server", "server-key", "client", "client-key",
             "other-ca", "other-client", "other-client-key"]
    return {n: os.path.join(outdir, n + ".pem") for n in names}


def revoke(certs, d, crt):
    """A CRL of the test CA (certs from make_certs, with ca-key) revoking the
    certificate file crt, made with openssl ca in directory d; its path."""
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True, timeout=30)
    with open(os.path.join(d, "index.txt"), "w"):
        pass
    with open(os.path.join(d, "crlnumber"), "w") as f:
        f.write("1000\n")
    cnf = os.path.join(d, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca = x\n[x]\ndatabase = %s/index.txt\ncrlnumber = %s/crlnumber\n"
                "default_md = sha256\ndefault_crl_days = 30\n" % (d, d))
    ca = ["-config", cnf, "-cert", certs["ca"], "-keyfile", certs["ca-key"]]
    run("openssl", "ca", *ca, "-revoke", crt)
    crl = os.path.join(d, "crl.pem")
    run("openssl", "ca", *ca, "-gencrl", "-out", crl)
    return crl


def b64(s):
    return base64.b64decode(s) if s else b""


class ServerError(Exception):
    pass


class Server:
    """One server process with its own data dir and ports, restartable in place."""

    def __init__(self, workdir, name="n1", certs=None, extra_args=(), env=None):
        self.workdir = workdir
        self.name = name
        self.data_dir = os.path.join(workdir, "data")
        self.log_path = os.path.join(workdir, "server.log")
        self.certs = certs          # dict from make_certs(), or None for plain TCP
        self.extra_args = list(extra_args)
        self.env = env
        self.client_port = None
        self.peer_port = None
        self.peer_scheme = "http"       # "https" for peer TLS (flags in extra_args)
        self.peer_host = "127.0.0.1"
        self.initial_cluster = None     # "name=url,..." for a cluster member
        self.cluster_state = "new"
        self.proc = None
        self.starts = 0
        self.killed = False         # True after our own SIGKILL
        self.stop_results = []      # (returncode, graceful) of every SIGTERM stop
        self._clients = []
        self._channels = []

    # -- addresses ---------------------------------------------------------
    @property
    def tls(self):
        return self.certs is not None

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    @property
    def client_url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.client_port)

    @property
    def peer_url(self):
        return "%s://%s:%d" % (self.peer_scheme, self.peer_host, self.peer_port)

    @property
    def target(self):
        return "127.0.0.1:%d" % self.client_port

    def argv(self):
        args = [METAD_BIN,
                "--name", self.name,
                "--data-dir", self.data_dir,
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster",
                self.initial_cluster or "%s=%s" % (self.name, self.peer_url),
                "--initial-cluster-state", self.cluster_state]
        if self.tls:
            args += ["--cert-file", self.certs["server"],
                     "--key-file", self.certs["server-key"],
                     "--trusted-ca-file", self.certs["ca"],
                     "--client-cert-auth"]
        return args + self.extra_args

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        """Start (or restart, same data dir and ports) and wait until it serves."""
        if self.proc is not None and self.proc.poll() is None:
            raise ServerError("already running")
        fresh_ports = self.client_port is None
        for attempt in range(3):
            if fresh_ports:
                self.pick_ports()
            self._stopping = False
            self._spawn()
            try:
                self.wait_ready()
                return self
            except ServerError:
                # Another process may have taken a port between our probe and
                # the server's bind: retry a fresh server on new ports.
                if (fresh_ports and attempt < 2 and self.proc.poll() is not None
                        and "address already in use" in self.log_text().lower()):
                    shutil.rmtree(self.data_dir, ignore_errors=True)
                    continue
                self.kill()
                self.killed = True      # already reported by this exception
                raise
        raise ServerError("could not start")

    def pick_ports(self):
        self.client_port, self.peer_port = free_port(), free_port()
        while self.peer_port == self.client_port:
            self.peer_port = free_port()

    def _spawn(self):
        if not os.access(METAD_BIN, os.X_OK):
            raise ServerError("server binary %s not found: build metad, or set METAD_BIN "
                              "(METAD_BIN=/usr/bin/etcd runs the tests against etcd)"
                              % METAD_BIN)
        self.starts += 1
        self.killed = False
        argv = self.argv()
        if SETPRIV:
            argv = [SETPRIV, "--pdeathsig", "KILL", "--"] + argv
        with open(self.log_path, "ab") as log:
            log.write(("\n===== start #%d: %s\n" % (self.starts, " ".join(argv))).encode())
            log.flush()
            # Own process group: a terminal ^C reaches pytest, whose teardown
            # then stops the server in order.
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir,
                                         env=self.env, start_new_session=True)

    def wait_ready(self, deadline=READY_DEADLINE, serializable=False):
        """Poll a linearizable Range until it answers (leader elected, serving);
        a learner serves only serializable ones."""
        end = time.monotonic() + deadline
        last = None
        ch = None
        try:
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    raise ServerError("server exited with %s before becoming ready:\n%s"
                                      % (self.proc.returncode, self.log_tail()))
                # First wait for the port to accept TCP (a gRPC channel that failed
                # to connect backs off for seconds), then ask through one channel:
                # its connection waits in the backlog until the member serves (it
                # does once published, as etcd's). A channel closed while still
                # connecting leaves grpcio's socket open, unread, and the server's
                # shutdown then waits its whole grace for it.
                if ch is None:
                    try:
                        socket.create_connection(("127.0.0.1", self.client_port),
                                                 timeout=0.5).close()
                    except OSError as e:
                        last = e
                        time.sleep(0.02)  # poll interval, not synchronisation
                        continue
                    ch = self.new_channel()
                try:
                    etcdrpc.KVStub(ch).Range(etcdrpc.RangeRequest(key=b"e2e-readiness-probe",
                                                                  serializable=serializable),
                                             timeout=2.0, wait_for_ready=True)
                    return
                except grpc.RpcError as e:
                    # With auth on, a tokenless read is refused, by a server that
                    # is up and answering.
                    if e.details() == "etcdserver: user name is empty":
                        return
                    last = e
                time.sleep(0.02)
        finally:
            if ch is not None:
                ch.close()
        raise ServerError("server not ready after %.0fs (last error: %s):\n%s"
                          % (deadline, last, self.log_tail()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _close_clients(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        for ch in self._channels:
            ch.close()
        self._clients, self._channels = [], []

    def stop(self, deadline=STOP_DEADLINE):
        """SIGTERM, wait; SIGKILL after the deadline. Returns (returncode, graceful)."""
        self._close_clients()
        if self.proc is None:
            return None, True
        if self.proc.poll() is not None:
            return self.proc.returncode, True
        self._stopping = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            result = self.proc.wait(timeout=deadline), True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            result = self.proc.wait(timeout=30), False
        self.stop_results.append(result)
        return result

    def kill(self):
        """SIGKILL (crash) and reap."""
        self._close_clients()
        if self.proc is not None and self.proc.poll() is None:
            self.killed = True
            self.proc.kill()
            self.proc.wait(timeout=30)

    def died_unexpectedly(self):
        """The process exited on its own (a crash), not through stop() or kill()."""
        return (self.proc is not None and self.proc.poll() is not None
                and not self.killed and not getattr(self, "_stopping", False))

    def restart(self):
        self.stop()
        return self.start()

    # -- logs --------------------------------------------------------------
    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, nbytes=20000):
        return self.log_text()[-nbytes:]

    # -- clients -----------------------------------------------------------
    def tls_args(self, cacert="ca", cert="client", key="client-key"):
        if not self.tls:
            return []
        args = []
        if cacert:
            args += ["--cacert", self.certs[cacert]]
        if cert:
            args += ["--cert", self.certs[cert], "--key", self.certs[key]]
        return args

    def ctl(self, *args, input=None, timeout=30, tls=None, endpoint=None):
        """Run etcdctl (API 3) against this server. Returns (rc, stdout, stderr).

        tls: None = the default client certs when the server uses TLS; otherwise a
        list of extra flags used instead (e.g. [] for none)."""
        env = dict(os.environ, ETCDCTL_API="3")
        for k in list(env):
            if k.startswith("ETCDCTL_") and k != "ETCDCTL_API":
                del env[k]
        cmd = [ETCDCTL, "--endpoints", endpoint or self.client_url,
               "--dial-timeout", "5s", "--command-timeout", "10s"]
        cmd += self.tls_args() if tls is None else list(tls)
        cmd += [str(a) for a in args]
        p = subprocess.run(cmd, input=input, capture_output=True, text=True,
                           timeout=timeout, env=env)
        return p.returncode, p.stdout, p.stderr

    def ctl_ok(self, *args, **kw):
        rc, out, err = self.ctl(*args, **kw)
        assert rc == 0, "etcdctl %s failed rc=%d\nstdout:%s\nstderr:%s" % (args, rc, out, err)
        return out

    def ctl_json(self, *args, **kw):
        return json.loads(self.ctl_ok("--write-out=json", *args, **kw))

    def client(self, **kw):
        """A python3-etcd3 client; closed when the server stops."""
        opts = dict(timeout=RPC_TIMEOUT)
        if self.tls:
            opts.update(ca_cert=self.certs["ca"], cert_cert=self.certs["client"],
                        cert_key=self.certs["client-key"])
        opts.update(kw)
        c = etcd3.client("127.0.0.1", self.client_port, **opts)
        self._clients.append(c)
        return c

    def new_channel(self, options=None):
        """A fresh gRPC channel (caller closes it)."""
        if self.tls:
            with open(self.certs["ca"], "rb") as f:
                ca = f.read()
            with open(self.certs["client-key"], "rb") as f:
                key = f.read()
            with open(self.certs["client"], "rb") as f:
                cert = f.read()
            creds = grpc.ssl_channel_credentials(ca, key, cert)
            return grpc.secure_channel(self.target, creds, options=options)
        return grpc.insecure_channel(self.target, options=options)

    def channel(self, options=None):
        """A gRPC channel closed when the server stops."""
        ch = self.new_channel(options)
        self._channels.append(ch)
        return ch

    def kv(self):
        return etcdrpc.KVStub(self.channel())

    def maintenance(self):
        return etcdrpc.MaintenanceStub(self.channel())

    def cluster(self):
        return etcdrpc.ClusterStub(self.channel())


class Cluster:
    """Members of one cluster, each a Server on its own ports and data dir,
    bootstrapped with etcd's --initial-cluster flags."""

    def __init__(self, workdir, size=3, extra_args=(), token="e2e-cluster",
                 peer_scheme="http", member_args=None, peer_hosts=None):
        """member_args: a list of extra flags per member; peer_hosts: the
        loopback address each member's peer URL uses."""
        self.workdir = workdir
        self.token = token
        self.members = [Server(os.path.join(workdir, "m%d" % i), name="m%d" % i,
                               extra_args=list(extra_args) +
                               list((member_args or [()] * size)[i]) +
                               ["--initial-cluster-token", token])
                        for i in range(size)]
        for i, m in enumerate(self.members):
            os.makedirs(m.workdir, exist_ok=True)
            m.peer_scheme = peer_scheme
            if peer_hosts:
                m.peer_host = peer_hosts[i]
            m.pick_ports()
        spec = ",".join("%s=%s" % (m.name, m.peer_url) for m in self.members)
        for m in self.members:
            m.initial_cluster = spec

    def start(self):
        """Start every member at once (a new cluster needs a quorum to elect
        a leader), then wait until each serves linearizable reads."""
        for m in self.members:
            m._stopping = False
            m._spawn()
        for m in self.members:
            m.wait_ready()
        return self

    def add_member(self, learner=True, via=None, user=None):
        """etcdctl member add (--learner) through a running member, then start
        the new member with --initial-cluster-state existing, as etcd's docs
        say. Returns the new Server (ready: serving at least serializable
        reads)."""
        m = self.announce_member(learner=learner, via=via, user=user)
        m._spawn()
        m.wait_ready(serializable=learner)
        return m

    def announce_member(self, learner=True, via=None, user=None):
        """The first half of add_member: `etcdctl member add` and the new
        member's Server, set up to join (--initial-cluster from etcdctl's
        ETCD_INITIAL_CLUSTER) but not started."""
        i = len(self.members)
        m = Server(os.path.join(self.workdir, "m%d" % i), name="m%d" % i,
                   extra_args=list(self.members[0].extra_args))
        os.makedirs(m.workdir, exist_ok=True)
        m.pick_ports()
        via = via or self.members[0]
        args = ["member", "add", m.name, "--peer-urls=%s" % m.peer_url]
        if user:  # with auth on, membership changes are root's
            args = ["--user", user] + args
        if learner:
            args.append("--learner")
        out = ctl_reconfig(via, *args)
        spec = [l.split("=", 1)[1].strip('"') for l in out.splitlines()
                if l.startswith("ETCD_INITIAL_CLUSTER=")]
        assert spec, out
        m.initial_cluster = spec[0]
        m.cluster_state = "existing"
        self.members.append(m)
        m._stopping = False
        return m

    def endpoints(self, members=None):
        return ",".join(m.client_url for m in (members or self.members))

    def status(self, m):
        return m.maintenance().Status(etcdrpc.StatusRequest(), timeout=RPC_TIMEOUT)

    def leader(self, deadline=10.0, among=None):
        """The member that every running member names as leader (polled)."""
        end = time.monotonic() + deadline
        last = None
        while time.monotonic() < end:
            running = [m for m in (among or self.members) if m.running()]
            try:
                seen = {self.status(m).leader for m in running}
            except grpc.RpcError as e:
                last = e
                seen = set()
            if len(seen) == 1 and 0 not in seen:
                lid = seen.pop()
                for m in running:
                    if self.status(m).header.member_id == lid:
                        return m
            last = last or seen
            time.sleep(0.02)  # poll interval
        raise ServerError("no agreed leader after %.0fs (last: %s)" % (deadline, last))

    def followers(self, leader):
        return [m for m in self.members if m is not leader]


def ctl_reconfig(member, *args, deadline=30.0):
    """etcdctl for a membership change. etcd (--strict-reconfig-check, on by
    default) refuses one with 'etcdserver: unhealthy cluster' until the
    leader has been connected to every voter for 5 s: retry until then."""
    end = time.monotonic() + deadline
    while True:
        rc, out, err = member.ctl(*args)
        if rc == 0:
            return out
        if "unhealthy cluster" not in err or time.monotonic() > end:
            raise AssertionError("etcdctl %s failed rc=%d\nstdout:%s\nstderr:%s"
                                 % (args, rc, out, err))
        time.sleep(0.2)  # poll interval


def wait_for(cond, deadline=30.0, what="condition"):
    """Poll cond() until it returns something true, and return that; fail
    the test after the deadline."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)  # poll interval
    raise AssertionError("timed out waiting for %s" % what)


def new_workdir():
    return tempfile.mkdtemp(prefix="metad-e2e-")


def rpc_error(fn, *args, **kw):
    """Call fn expecting a grpc.RpcError; return (code, details)."""
    kw.setdefault("timeout", RPC_TIMEOUT)
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        return e.code(), e.details()
    raise AssertionError("expected an RPC error from %s" % getattr(fn, "_method", fn))


def ctl_error(server, *args, **kw):
    """Run etcdctl expecting failure; return (rc, message of its final 'Error: ' line)."""
    rc, out, err = server.ctl(*args, **kw)
    lines = [l for l in err.splitlines() if l.startswith("Error: ")]
    return rc, (lines[-1][len("Error: "):] if lines else err.strip())


def header_ok(h, revision=True):
    """Every etcd response header names the cluster, the member and the raft term.
    h is a ResponseHeader message or etcdctl's JSON dict of one."""
    if isinstance(h, dict):
        h = etcdrpc.ResponseHeader(**h)
    assert h.cluster_id != 0, h
    assert h.member_id != 0, h
    assert h.raft_term >= 1, h
    if revision:
        assert h.revision >= 1, h

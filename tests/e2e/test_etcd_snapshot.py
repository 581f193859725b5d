"""etcd-format snapshots (issue 14): `etcdctl snapshot save` from the server,
`snapshot status`, `snapshot restore`, and Debian's etcd 3.4 started from the
restored directory serving the same keys, revisions, versions and leases.
Passes against the reference etcd too (METAD_BIN=/usr/bin/etcd)."""

import io
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from harness import ETCDCTL, IS_REFERENCE_ETCD, free_port, new_workdir

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def ctl(endpoint, *args, timeout=30):
    env = dict(os.environ, ETCDCTL_API="3")
    p = subprocess.run([ETCDCTL, "--endpoints", endpoint, "--dial-timeout", "5s",
                        "--command-timeout", "20s"] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


class RestoredEtcd:
    """Debian's etcd started from a directory made by `etcdctl snapshot restore`."""

    def __init__(self, snapshot):
        self.dir = new_workdir()
        self.cport, self.pport = free_port(), free_port()
        self.peer = "http://127.0.0.1:%d" % self.pport
        self.url = "http://127.0.0.1:%d" % self.cport
        self.data = os.path.join(self.dir, "restored")
        rc, out, err = ctl(self.url, "snapshot", "restore", snapshot, "--data-dir", self.data,
                           "--name", "r1", "--initial-cluster", "r1=" + self.peer,
                           "--initial-advertise-peer-urls", self.peer)
        assert rc == 0, err
        self.log = open(os.path.join(self.dir, "etcd.log"), "wb")
        self.proc = subprocess.Popen(
            [ETCD, "--name", "r1", "--data-dir", self.data, "--listen-client-urls", self.url,
             "--advertise-client-urls", self.url, "--listen-peer-urls", self.peer,
             "--initial-advertise-peer-urls", self.peer, "--initial-cluster", "r1=" + self.peer],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "etcd exited: see %s" % self.dir
            rc, _, err = ctl(self.url, "get", "readiness-probe")
            if rc == 0 or "user name is empty" in err:   # serving (with auth on)
                return
            time.sleep(0.05)   # poll interval
        raise AssertionError("restored etcd not ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def get_json(endpoint, *args):
    rc, out, err = ctl(endpoint, "get", "-w", "json", *args)
    assert rc == 0, err
    return json.loads(out)


def test_snapshot_save_status_restore_into_etcd(server, tmp_path):
    c = server.client()
    for i in range(50):
        c.put("k/%02d" % i, "v%d" % i)
    c.put("k/01", "again")
    c.delete("k/02")
    lease = c.lease(600)
    c.put("leased", "x", lease=lease)
    compact_at = get_json(server.client_url, "k/00")["header"]["revision"] - 10
    server.ctl_ok("compaction", compact_at)
    c.put("after", "compaction")
    head = get_json(server.client_url, "after")["header"]["revision"]

    path = str(tmp_path / "snap.db")
    out = server.ctl_ok("snapshot", "save", path)
    assert "Snapshot saved at" in out
    assert os.path.getsize(path) % 512 == 32   # bbolt pages + sha256, as etcdctl checks
    st = json.loads(server.ctl_ok("snapshot", "status", path, "-w", "json"))
    assert st["revision"] == head
    assert st["totalKey"] >= 52

    etcd = RestoredEtcd(path)
    try:
        want = get_json(server.client_url, "", "--prefix")
        got = get_json(etcd.url, "", "--prefix")
        assert got["kvs"] == want["kvs"]   # key, value, create/mod revision, version, lease
        assert got["header"]["revision"] == head
        # History above the compaction is there; below it is compacted.
        old = get_json(etcd.url, "k/01", "--rev", compact_at + 1)
        assert old["kvs"] == get_json(server.client_url, "k/01", "--rev", compact_at + 1)["kvs"]
        rc, _, err = ctl(etcd.url, "get", "k/01", "--rev", compact_at - 1)
        assert rc != 0 and "required revision has been compacted" in err
        rc, out, _ = ctl(etcd.url, "lease", "timetolive", "%x" % lease.id, "--keys")
        assert rc == 0 and "leased" in out and "remaining" in out
    finally:
        etcd.stop()


def test_corrupted_snapshot_is_refused(server, tmp_path):
    server.client().put("a", "1")
    path = str(tmp_path / "snap.db")
    server.ctl_ok("snapshot", "save", path)
    with open(path, "r+b") as f:
        f.seek(4096 * 3 + 100)
        b = f.read(1)
        f.seek(4096 * 3 + 100)
        f.write(bytes([b[0] ^ 0xFF]))
    rc, out, err = ctl(server.client_url, "snapshot", "restore", path, "--data-dir",
                       str(tmp_path / "restored"))
    assert rc != 0 and "expected sha256" in err


def test_auth_carried_into_etcd(server, tmp_path):
    """With auth on, the snapshot holds etcd's auth buckets: the restored
    etcd 3.4 has the same users (passwords too), roles, permissions and
    switch, and enforces them."""
    root = ("--user", "root:rootpw")
    server.ctl_ok("user", "add", "root:rootpw")
    server.ctl_ok("role", "add", "app")
    server.ctl_ok("role", "grant-permission", "--prefix", "app", "readwrite", "/app/")
    server.ctl_ok("role", "grant-permission", "app", "read", "/conf")
    server.ctl_ok("user", "add", "alice:alicepw")
    server.ctl_ok("user", "grant-role", "alice", "app")
    server.ctl_ok("user", "add", "bob", "--no-password")
    server.ctl_ok("user", "grant-role", "bob", "app")
    assert server.ctl_ok("auth", "enable").strip() == "Authentication Enabled"
    server.ctl_ok(*root, "put", "/app/a", "1")
    server.ctl_ok(*root, "put", "/conf", "c")
    server.ctl_ok(*root, "put", "/secret", "s")
    users = server.ctl_ok(*root, "user", "list").split()
    roles = server.ctl_ok(*root, "role", "list").split()
    app = server.ctl_ok(*root, "role", "get", "app")

    path = str(tmp_path / "snap.db")
    server.ctl_ok(*root, "snapshot", "save", path)
    etcd = RestoredEtcd(path)
    try:
        def ok(*args):
            rc, out, err = ctl(etcd.url, *args)
            assert rc == 0, err
            return out

        def refused(*args):
            rc, _, err = ctl(etcd.url, *args)
            assert rc != 0
            return err
        # The switch: a request without a user is refused, as on the source.
        assert "user name is empty" in refused("get", "/app/a")
        assert "authentication failed" in refused("--user", "alice:wrong", "get", "/app/a")
        assert ok("--user", "alice:alicepw", "get", "/app/a", "--print-value-only") == "1\n"
        ok("--user", "alice:alicepw", "put", "/app/b", "2")
        assert "permission denied" in refused("--user", "alice:alicepw", "put", "/conf", "x")
        assert "permission denied" in refused("--user", "alice:alicepw", "get", "/secret")
        assert ok(*root, "user", "list").split() == users
        assert ok(*root, "role", "list").split() == roles
        assert ok(*root, "role", "get", "app") == app
        assert "Roles: app" in ok(*root, "user", "get", "bob")
        assert ok(*root, "get", "/secret", "--print-value-only") == "s\n"
    finally:
        etcd.stop()


def test_many_snapshots(server):
    """Every Snapshot call is served, however many came before: each one
    used to keep a storage session for good, and past about a thousand the
    server answered "etcdserver: out of memory"."""
    c = server.client()
    c.put("a", "1")
    sizes = set()
    for _ in range(1100):
        f = io.BytesIO()
        c.snapshot(f)
        sizes.add(len(f.getvalue()))
    assert len(sizes) == 1 and sizes.pop() > 3 * 4096


@pytest.mark.skipif(IS_REFERENCE_ETCD, reason="metad's own log line")
def test_layout_halves_balanced_after_compaction(server_factory, tmp_path):
    """Two threads lay the file out, each a part of the key bucket; the
    split must leave each about half of the entries, also after a compaction
    removed the history below half the head. It used to be half the head
    revision, where this store has no entries left: one thread did it all."""
    server = server_factory(extra_args=("--log-level", "debug"))
    c = server.client()
    for r in range(6):
        for i in range(500):
            c.put("k/%03d" % i, "v%d" % r)
    head = get_json(server.client_url, "k/000")["header"]["revision"]
    server.ctl_ok("compaction", "--physical", head - 50)
    server.ctl_ok("snapshot", "save", str(tmp_path / "snap.db"))
    lines = re.findall(r"key bucket split at revision (\d+) of (\d+): (\d+) and (\d+) entries",
                       server.log_text())
    assert lines, server.log_tail()
    split, top, first, second = map(int, lines[-1])
    assert top == head and first + second >= 550
    assert min(first, second) >= (first + second) // 4, lines[-1]


@pytest.mark.skipif(IS_REFERENCE_ETCD, reason="metad's own log line")
def test_client_leaving_mid_snapshot_is_logged(server):
    """A snapshot whose client goes away is logged: clientv3 answers the
    UNAVAILABLE such a stream ends with by asking for a whole new snapshot,
    so without the line a failed first attempt shows only as a slow save.
    The server goes on serving snapshots."""
    from etcd3 import etcdrpc
    c = server.client()
    for i in range(300):  # more than gRPC's windows and our queue hold
        c.put("big/%03d" % i, "x" * 100000)
    stream = server.maintenance().Snapshot(etcdrpc.SnapshotRequest(), timeout=30)
    first = next(stream)
    assert first.remaining_bytes > len(first.blob)
    stream.cancel()
    deadline = time.monotonic() + 20
    while "failed to send database snapshot to client" not in server.log_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.05)
    assert re.search(r"failed to send database snapshot to client: the stream ended "
                     r"\(\d+ of \d+ bytes sent\)", server.log_text()), server.log_tail()
    f = io.BytesIO()
    c.snapshot(f)
    assert len(f.getvalue()) > 300 * 100000

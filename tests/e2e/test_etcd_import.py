"""Moving from etcd to metad (issue 14): a snapshot of Debian's etcd 3.4 with
history, compaction and leases, imported by metad (--import-etcd-snapshot,
or a data dir made by `etcdctl snapshot restore`), answers Range at every
revision above the compacted one exactly as etcd does, key by key. The
restore-dir test also passes against the reference etcd (that is etcd's own
path); the flag is metad's."""

import os
import random
import shutil
import signal
import subprocess
import time

import grpc
import pytest
from etcd3 import etcdrpc

from harness import ETCDCTL, IS_REFERENCE_ETCD, RPC_TIMEOUT, free_port, new_workdir

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def ctl(endpoint, *args):
    env = dict(os.environ, ETCDCTL_API="3")
    p = subprocess.run([ETCDCTL, "--endpoints", endpoint, "--command-timeout", "30s"]
                       + [str(a) for a in args], capture_output=True, text=True,
                       timeout=60, env=env)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def etcd_snapshot():
    """Debian's etcd with a history: 300 keys, overwrites, deletes, a
    multi-key txn, leases and a compaction; its snapshot file and the
    revisions to compare."""
    d = new_workdir()
    cport, pport = free_port(), free_port()
    url, peer = "http://127.0.0.1:%d" % cport, "http://127.0.0.1:%d" % pport
    log = open(os.path.join(d, "etcd.log"), "wb")
    proc = subprocess.Popen([ETCD, "--data-dir", os.path.join(d, "etcd"),
                             "--listen-client-urls", url, "--advertise-client-urls", url,
                             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                             "--initial-cluster", "default=" + peer],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ch = grpc.insecure_channel("127.0.0.1:%d" % cport)
        kv = etcdrpc.KVStub(ch)
        deadline = time.monotonic() + 30
        while True:
            try:
                kv.Range(etcdrpc.RangeRequest(key=b"x"), timeout=2)
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)   # poll interval
        lease = etcdrpc.LeaseStub(ch).LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=900),
                                                 timeout=RPC_TIMEOUT).ID
        rng = random.Random(7)
        for i in range(300):
            kv.Put(etcdrpc.PutRequest(key=b"k/%03d" % i, value=b"v%d" % i,
                                      lease=lease if i % 50 == 0 else 0), timeout=RPC_TIMEOUT)
        for _ in range(600):
            k = b"k/%03d" % rng.randrange(300)
            if rng.random() < 0.15:
                kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=k), timeout=RPC_TIMEOUT)
            else:
                kv.Put(etcdrpc.PutRequest(key=k, value=b"w%d" % rng.randrange(10 ** 6)),
                       timeout=RPC_TIMEOUT)
        ops = [etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b"t/%d" % i, value=b"t"))
               for i in range(3)]
        kv.Txn(etcdrpc.TxnRequest(success=ops), timeout=RPC_TIMEOUT)
        head = kv.Range(etcdrpc.RangeRequest(key=b"x"), timeout=RPC_TIMEOUT).header.revision
        compact = head - 400
        kv.Compact(etcdrpc.CompactionRequest(revision=compact, physical=True),
                   timeout=RPC_TIMEOUT)
        path = os.path.join(d, "etcd.db")
        rc, _, err = ctl(url, "snapshot", "save", path)
        assert rc == 0, err
        ch.close()
        yield path, head, compact, lease
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def same_answers(srv, snapshot_path, head, compact):
    """The imported server answers like the etcd the snapshot came from:
    compare with a fresh etcd restored from the same file."""
    kv = srv.kv()
    got_head = kv.Range(etcdrpc.RangeRequest(key=b"\0", range_end=b"\0"), timeout=RPC_TIMEOUT)
    assert got_head.header.revision == head
    ref = RestoredEtcd(snapshot_path)
    try:
        rkv = etcdrpc.KVStub(ref.channel)
        for rev in range(compact, head + 1):
            q = etcdrpc.RangeRequest(key=b"\0", range_end=b"\0", revision=rev)
            a, b = kv.Range(q, timeout=RPC_TIMEOUT), rkv.Range(q, timeout=RPC_TIMEOUT)
            assert list(a.kvs) == list(b.kvs), "revision %d differs" % rev
            assert a.count == b.count
        with pytest.raises(grpc.RpcError) as e:
            kv.Range(etcdrpc.RangeRequest(key=b"k/", revision=compact - 1),
                     timeout=RPC_TIMEOUT)
        assert e.value.details() == "etcdserver: mvcc: required revision has been compacted"
    finally:
        ref.stop()


class RestoredEtcd:
    def __init__(self, snapshot):
        self.dir = new_workdir()
        cport, pport = free_port(), free_port()
        url, peer = "http://127.0.0.1:%d" % cport, "http://127.0.0.1:%d" % pport
        data = os.path.join(self.dir, "d")
        rc, _, err = ctl(url, "snapshot", "restore", snapshot, "--data-dir", data,
                         "--name", "r", "--initial-cluster", "r=" + peer,
                         "--initial-advertise-peer-urls", peer)
        assert rc == 0, err
        self.log = open(os.path.join(self.dir, "etcd.log"), "wb")
        self.proc = subprocess.Popen(
            [ETCD, "--name", "r", "--data-dir", data, "--listen-client-urls", url,
             "--advertise-client-urls", url, "--listen-peer-urls", peer,
             "--initial-advertise-peer-urls", peer, "--initial-cluster", "r=" + peer],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % cport)
        deadline = time.monotonic() + 30
        while True:
            try:
                etcdrpc.KVStub(self.channel).Range(etcdrpc.RangeRequest(key=b"x"), timeout=2)
                return
            except grpc.RpcError:
                assert time.monotonic() < deadline and self.proc.poll() is None
                time.sleep(0.05)   # poll interval

    def stop(self):
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.mark.skipif(IS_REFERENCE_ETCD, reason="--import-etcd-snapshot is metad's flag")
def test_import_etcd_snapshot_flag(server_factory, etcd_snapshot):
    path, head, compact, lease = etcd_snapshot
    srv = server_factory(start=False, extra_args=["--import-etcd-snapshot", path])
    srv.start()
    assert "imported etcd data" in srv.log_text()
    same_answers(srv, path, head, compact)
    ttl = etcdrpc.LeaseStub(srv.channel()).LeaseTimeToLive(
        etcdrpc.LeaseTimeToLiveRequest(ID=lease, keys=True), timeout=RPC_TIMEOUT)
    assert ttl.TTL > 0 and len(ttl.keys) >= 1
    # It goes on from there: the next write takes the next revision.
    r = srv.kv().Put(etcdrpc.PutRequest(key=b"after", value=b"1"), timeout=RPC_TIMEOUT)
    assert r.header.revision == head + 1


def test_start_from_a_restored_etcd_data_dir(server_factory, etcd_snapshot):
    path, head, compact, _ = etcd_snapshot
    srv = server_factory(start=False)
    os.makedirs(srv.workdir, exist_ok=True)
    srv.pick_ports()
    rc, _, err = ctl(srv.client_url, "snapshot", "restore", path, "--data-dir", srv.data_dir,
                     "--name", srv.name, "--initial-cluster", "%s=%s" % (srv.name, srv.peer_url),
                     "--initial-advertise-peer-urls", srv.peer_url)
    assert rc == 0, err
    srv.start()
    same_answers(srv, path, head, compact)


@pytest.mark.skipif(IS_REFERENCE_ETCD, reason="--import-etcd-snapshot is metad's flag")
def test_import_refuses_a_corrupted_snapshot(server_factory, etcd_snapshot, tmp_path):
    path = str(tmp_path / "bad.db")
    shutil.copy(etcd_snapshot[0], path)
    with open(path, "r+b") as f:
        f.seek(4096 * 2 + 7)
        b = f.read(1)
        f.seek(4096 * 2 + 7)
        f.write(bytes([b[0] ^ 0x5A]))
    srv = server_factory(start=False, extra_args=["--import-etcd-snapshot", path])
    with pytest.raises(Exception):
        srv.start()
    assert "expected sha256" in srv.log_text()
    srv.killed = True   # it exited on purpose


@pytest.fixture(scope="module")
def etcd_auth_snapshot():
    """A snapshot of Debian's etcd with auth on: root, alice (a password,
    readwrite on /app/, read on /conf) and bob (no password)."""
    d = new_workdir()
    cport, pport = free_port(), free_port()
    url, peer = "http://127.0.0.1:%d" % cport, "http://127.0.0.1:%d" % pport
    log = open(os.path.join(d, "etcd.log"), "wb")
    proc = subprocess.Popen([ETCD, "--data-dir", os.path.join(d, "etcd"),
                             "--listen-client-urls", url, "--advertise-client-urls", url,
                             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                             "--initial-cluster", "default=" + peer],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while ctl(url, "get", "x")[0] != 0:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)   # poll interval
        for args in (("user", "add", "root:rootpw"), ("role", "add", "app"),
                     ("role", "grant-permission", "--prefix", "app", "readwrite", "/app/"),
                     ("role", "grant-permission", "app", "read", "/conf"),
                     ("user", "add", "alice:alicepw"), ("user", "grant-role", "alice", "app"),
                     ("user", "add", "bob", "--no-password"), ("auth", "enable"),
                     ("--user", "root:rootpw", "put", "/app/a", "1"),
                     ("--user", "root:rootpw", "put", "/conf", "c")):
            rc, _, err = ctl(url, *args)
            assert rc == 0, (args, err)
        rc, status, err = ctl(url, "--user", "root:rootpw", "endpoint", "status", "-w", "json")
        assert rc == 0, err
        path = os.path.join(d, "etcd-auth.db")
        rc, _, err = ctl(url, "--user", "root:rootpw", "snapshot", "save", path)
        assert rc == 0, err
        yield path
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(IS_REFERENCE_ETCD, reason="--import-etcd-snapshot is metad's flag")
def test_import_keeps_users_roles_and_the_auth_switch(server_factory, etcd_auth_snapshot):
    srv = server_factory(start=False, extra_args=["--import-etcd-snapshot", etcd_auth_snapshot])
    srv.start()
    assert "3 users, 2 roles, auth enabled" in srv.log_text()
    rc, _, err = srv.ctl("get", "/app/a")
    assert rc != 0 and "user name is empty" in err
    rc, _, err = srv.ctl("--user", "alice:wrong", "get", "/app/a")
    assert rc != 0 and "authentication failed" in err
    # etcd's bcrypt hashes verify here: the same passwords work.
    assert srv.ctl_ok("--user", "alice:alicepw", "get", "/app/a", "--print-value-only") == "1\n"
    srv.ctl_ok("--user", "alice:alicepw", "put", "/app/b", "2")
    rc, _, err = srv.ctl("--user", "alice:alicepw", "put", "/conf", "x")
    assert rc != 0 and "permission denied" in err
    root = ("--user", "root:rootpw")
    assert srv.ctl_ok(*root, "user", "list").split() == ["alice", "bob", "root"]
    assert srv.ctl_ok(*root, "role", "get", "app") == (
        "Role app\nKV Read:\n\t[/app/, /app0) (prefix /app/)\n\t/conf\n"
        "KV Write:\n\t[/app/, /app0) (prefix /app/)\n")
    assert "Roles: app" not in srv.ctl_ok(*root, "user", "get", "bob")
    # Auth management goes on from etcd's auth revision.
    srv.ctl_ok(*root, "user", "grant-role", "bob", "app")
    assert "Roles: app" in srv.ctl_ok(*root, "user", "get", "bob")

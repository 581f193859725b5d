"""etcdctl 3.4's operational commands against one server (issue 14):
endpoint status/health/hashkv with --cluster (endpoints from MemberList),
defrag --cluster, version, and make-mirror into a second server. Passes
against the reference etcd too (METAD_BIN=/usr/bin/etcd)."""

import os
import subprocess
import time

from harness import ETCDCTL


def test_endpoint_commands_with_cluster(server):
    server.ctl_ok("put", "a", "1")
    (st,) = server.ctl_json("endpoint", "status", "--cluster")
    assert st["Endpoint"] == server.client_url and st["Status"]["header"]["revision"] == 2
    (h,) = server.ctl_json("endpoint", "health", "--cluster")
    assert h["health"] is True
    (hk,) = server.ctl_json("endpoint", "hashkv", "--cluster")
    assert hk["HashKV"]["hash"] != 0
    out = server.ctl_ok("defrag", "--cluster")
    assert "Finished defragmenting etcd member[%s]" % server.client_url in out
    out = server.ctl_ok("version")
    assert out.startswith("etcdctl version: 3.4")


def test_make_mirror(server_factory):
    src, dst = server_factory(name="src"), server_factory(name="dst")
    for i in range(20):
        src.ctl_ok("put", "mirror/%02d" % i, "v%d" % i)
    env = dict(os.environ, ETCDCTL_API="3")
    p = subprocess.Popen([ETCDCTL, "--endpoints", src.client_url, "make-mirror",
                          "--prefix", "mirror/", dst.client_url],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 20
        src.ctl_ok("put", "mirror/live", "later")   # after the copy: through the watch
        got = {}
        while time.monotonic() < deadline:
            j = dst.ctl_json("get", "mirror/", "--prefix")
            got = {kv["key"]: kv["value"] for kv in j.get("kvs", [])}
            if len(got) == 21:
                break
            time.sleep(0.1)   # poll interval
        assert len(got) == 21
    finally:
        p.kill()
        p.wait()
    want = {kv["key"]: kv["value"]
            for kv in src.ctl_json("get", "mirror/", "--prefix")["kvs"]}
    assert got == want

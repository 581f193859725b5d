"""--auto-tls (issue 14): with https client URLs and no certificate flags the
server makes a self-signed certificate under <data-dir>/fixtures/client, as
etcd does, serves gRPC and HTTP with it on one port, and reuses it after a
restart. Passes against the reference etcd too (METAD_BIN=/usr/bin/etcd)."""

import json
import os
import subprocess
import time

from harness import METAD_BIN


def start_auto_tls(server_factory):
    srv = server_factory(start=False, name="auto")
    os.makedirs(srv.workdir, exist_ok=True)
    srv.pick_ports()
    url = "https://127.0.0.1:%d" % srv.client_port
    srv.argv = lambda: [METAD_BIN, "--name", "auto", "--data-dir", srv.data_dir,
                        "--listen-client-urls", url, "--advertise-client-urls", url,
                        "--listen-peer-urls", srv.peer_url,
                        "--initial-advertise-peer-urls", srv.peer_url,
                        "--initial-cluster", "auto=" + srv.peer_url, "--auto-tls"]

    def wait_ready(deadline=20.0, serializable=False):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            assert srv.proc.poll() is None, srv.log_tail()
            p = subprocess.run(["curl", "-sk", "-m", "2", url + "/health"],
                               capture_output=True, text=True)
            if p.returncode == 0 and p.stdout and json.loads(p.stdout)["health"] == "true":
                return
            time.sleep(0.05)   # poll interval
        raise AssertionError("not ready:\n" + srv.log_tail())
    srv.wait_ready = wait_ready
    srv.start()
    return srv, url


def test_auto_tls(server_factory):
    srv, url = start_auto_tls(server_factory)
    cert = os.path.join(srv.data_dir, "fixtures", "client", "cert.pem")
    assert os.path.exists(cert)
    tls = ["--insecure-skip-tls-verify", "--insecure-transport=false"]
    srv.ctl_ok("put", "a", "1", endpoint=url, tls=tls)
    assert srv.ctl_ok("get", "a", "--print-value-only", endpoint=url, tls=tls).strip() == "1"
    p = subprocess.run(["curl", "-sk", "-m", "10", "-X", "POST", "-d", '{"key":"YQ=="}',
                        url + "/v3/kv/range"], capture_output=True, text=True)
    assert json.loads(p.stdout)["count"] == "1"
    with open(cert, "rb") as f:
        before = f.read()
    srv.restart()
    with open(cert, "rb") as f:
        assert f.read() == before   # reused, as etcd reuses it
    assert srv.ctl_ok("get", "a", "--print-value-only", endpoint=url, tls=tls).strip() == "1"

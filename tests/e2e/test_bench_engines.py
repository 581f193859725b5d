"""metad-bench's two unary engines against a real server: the nghttp2 one
(the default, tools/bench/h2.h) and gRPC core's. Every put a run reports as
ok is in the store, a server's error reaches the report with its gRPC code
and message, and a server that goes away ends the run instead of hanging it."""

import json
import os
import subprocess
import time

import pytest

from harness import METAD_BIN

# METAD_BENCH: the tool from a build, when METAD_BIN is the reference etcd.
BENCH = os.environ.get("METAD_BENCH") or os.path.join(os.path.dirname(METAD_BIN), "metad-bench")
TOTAL = 2000


def run_bench(server, *args, timeout=60):
    out = subprocess.run([BENCH, *args, "--endpoints", server.target, "--json", "--no-progress"],
                         capture_output=True, text=True, timeout=timeout)
    res = json.loads(out.stdout) if out.stdout.strip() else None
    return out, res


def count(server, prefix):
    j = server.ctl_json("get", prefix, "--prefix", "--keys-only")
    return int(j.get("count", 0)), int(j["header"]["revision"])


@pytest.mark.parametrize("engine", ["h2", "grpc"])
def test_every_ok_put_is_stored(server, engine):
    rev0 = count(server, "e-")[1]
    out, res = run_bench(server, "put", "--engine", engine, "--key-prefix", "e-",
                         "--key-size", "12", "--val-size", "64", "--sequential-keys",
                         "--key-space-size", str(TOTAL), "--clients", "64", "--conns", "8",
                         "--total", str(TOTAL), "--duration", "30")
    assert out.returncode == 0, out.stderr
    assert res["ok"] == TOTAL and res["errors"] == 0, res
    keys, rev = count(server, "e-")
    # Sequential keys: each of the TOTAL keys written once, one revision each.
    assert keys == TOTAL
    assert rev - rev0 == TOTAL


@pytest.mark.parametrize("engine", ["h2", "grpc"])
def test_server_error_is_reported(server, engine):
    # Over etcd's --max-request-bytes (1.5 MiB), under gRPC's own limit
    # (512 KiB more): the server itself refuses each put.
    out, res = run_bench(server, "put", "--engine", engine, "--val-size", str(1700 * 1000),
                         "--clients", "2", "--conns", "1", "--total", "4")
    assert out.returncode == 3, out.stderr  # the run completed with errors
    assert res["ok"] == 0 and res["errors"] == 4, res
    assert res["first_error"]["code"] == "INVALID_ARGUMENT", res
    assert "request is too large" in res["first_error"]["message"], res


def test_h2_run_ends_when_the_server_goes(server):
    proc = subprocess.Popen([BENCH, "put", "--endpoints", server.target, "--clients", "50",
                             "--conns", "5", "--total", "100000000", "--duration", "60",
                             "--json", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Puts are landing (polled against a deadline), then the server goes.
        rev0 = count(server, "")[1]
        deadline = time.monotonic() + 30
        while count(server, "")[1] < rev0 + 100 and time.monotonic() < deadline:
            pass
        server.kill()
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    res = json.loads(stdout)
    assert res["ok"] > 0, res
    assert res["first_error"]["code"] == "UNAVAILABLE", res

"""Logging as etcd's zap logger (issue 15): every line the server writes is a
JSON object in zap's shape (level, ts, caller, msg, then fields);
--log-level drops what is below it; --log-outputs sends lines to stderr,
stdout or files. Passes against the reference etcd with --logger zap
(etcd 3.4's default is capnslog), except where marked.
"""

import json
import re
import subprocess
import time

import pytest
from etcd3 import etcdrpc

from harness import IS_REFERENCE_ETCD, METAD_BIN, RPC_TIMEOUT, free_port

# A start-up line etcd 3.4 (zap) and metad both write once per start.
STARTED = "enabled capabilities for version"
LEVELS = {"debug", "info", "warn", "error", "dpanic", "panic", "fatal"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})$")
CALLER = re.compile(r"^[\w.+-]+/[\w.+-]+:\d+$")
metad_only = pytest.mark.skipif(IS_REFERENCE_ETCD, reason="metad's own messages")


def zap(*args):
    return (["--logger", "zap"] if IS_REFERENCE_ETCD else []) + list(args)


def records(text):
    """The JSON lines of a log (the harness's own '=====' lines left out).
    metad writes nothing else; etcd's embedded gRPC client may."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("====="):
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            assert IS_REFERENCE_ETCD, "not a JSON line: %r" % line
    return out


def read(path):
    with open(path) as f:
        return f.read()


def put(srv, key=b"k", value=b"v"):
    srv.kv().Put(etcdrpc.PutRequest(key=key, value=value), timeout=RPC_TIMEOUT)


def wait_lines(text_of, n, deadline=20.0):
    """The log's records once STARTED is in it n times (it may come a moment
    after the server first answers)."""
    end = time.monotonic() + deadline
    while True:
        recs = records(text_of())
        if sum(r["msg"] == STARTED for r in recs) >= n or time.monotonic() > end:
            return recs
        time.sleep(0.05)  # poll interval


def test_every_line_is_a_zap_json_object(server_factory):
    srv = server_factory(extra_args=zap())
    put(srv)
    srv.restart()
    recs = wait_lines(srv.log_text, 2)
    assert len(recs) >= 5
    for r in recs:
        assert list(r)[:4] == ["level", "ts", "caller", "msg"], r
        assert r["level"] in LEVELS and TS.match(r["ts"]) and CALLER.match(r["caller"]), r
    started = [r for r in recs if r["msg"] == STARTED]
    assert len(started) == 2  # one per start
    assert all(r["level"] == "info" and r["cluster-version"] for r in started)


def test_log_level_error_silences_info_and_warn(server_factory):
    # Control first: at warn a warning shows and info does not.
    warn_args = ["--log-level", "warn"] + ([] if IS_REFERENCE_ETCD else ["--max-wals", "0"])
    srv = server_factory(extra_args=zap(*warn_args))
    put(srv)
    recs = records(srv.log_text())
    assert any(r["level"] == "warn" for r in recs), srv.log_text()
    assert not [r for r in recs if r["level"] in ("debug", "info")]
    srv = server_factory(extra_args=zap("--log-level", "error", *warn_args[2:]))
    put(srv)
    srv.restart()
    assert [r for r in records(srv.log_text()) if r["level"] in ("debug", "info", "warn")] == []


def test_log_outputs_file_gets_the_lines(server_factory, tmp_path):
    path = str(tmp_path / "metad.log")
    srv = server_factory(extra_args=zap("--log-outputs", path))
    put(srv)
    recs = wait_lines(lambda: read(path), 1)
    assert any(r["msg"] == STARTED for r in recs)
    # Nothing on stderr/stdout (the harness's server.log) but its own lines.
    assert records(srv.log_text()) == [] or IS_REFERENCE_ETCD
    # Appended to on restart, as zap opens its files.
    srv.restart()
    assert sum(r["msg"] == STARTED for r in wait_lines(lambda: read(path), 2)) == 2


def test_log_outputs_several(server_factory, tmp_path):
    path = str(tmp_path / "copy.log")
    srv = server_factory(extra_args=zap("--log-outputs", "stderr," + path))
    put(srv)
    in_file = [r["msg"] for r in wait_lines(lambda: read(path), 1)]
    on_stderr = [r["msg"] for r in records(srv.log_text())]
    assert STARTED in in_file
    assert in_file == on_stderr[:len(in_file)]


def run_flags(tmp_path, *args):
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    argv = [METAD_BIN, "--data-dir", str(tmp_path / "data"), "--listen-client-urls", url,
            "--advertise-client-urls", url, "--listen-peer-urls",
            "http://127.0.0.1:%d" % free_port()] + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


def test_bad_log_flags_are_refused(tmp_path):
    rc, out = run_flags(tmp_path, *zap("--log-level", "loud"))
    assert rc != 0 and "loud" in out
    rc, out = run_flags(tmp_path, *zap("--log-outputs", "default,stderr"))
    assert rc != 0 and 'multi logoutput for "default" is not supported yet' in out


@metad_only
def test_capnslog_is_accepted_with_a_warning(server_factory):
    srv = server_factory(extra_args=["--logger", "capnslog"])
    recs = wait_lines(srv.log_text, 1)
    warns = [r for r in recs if r["level"] == "warn" and "capnslog" in r["msg"]]
    assert len(warns) == 1
    assert any(r["msg"] == STARTED for r in recs)


@metad_only
def test_messages_with_quotes_stay_valid_json(tmp_path):
    # A path with a quote and a backslash lands in a log field (metad
    # refuses such a --wal-dir): the line must still be valid JSON.
    rc, out = run_flags(tmp_path, "--wal-dir", str(tmp_path / 'w"a\\l'))
    assert rc != 0
    bad = [r for r in records(out) if r["level"] == "fatal"]
    assert bad and 'w"a\\l' in bad[0]["error"], out

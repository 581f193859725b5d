"""Every etcd 3.4 server flag (issue 15): each one `etcd --help` lists is in
README.md's flags table and is accepted with its etcd default, and those
set to something metad cannot do are refused at start-up with a reason
instead of being ignored. Reads Debian's /usr/bin/etcd --help.
"""

import os
import re
import shutil
import subprocess
import time

import pytest
from etcd3 import etcdrpc

from harness import IS_REFERENCE_ETCD, METAD_BIN, REPO, free_port

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
metad_only = pytest.mark.skipif(IS_REFERENCE_ETCD, reason="metad's flags")


def etcd_flags():
    """(name, default) of every flag in `etcd --help`, in its order."""
    if not os.access(ETCD, os.X_OK):
        pytest.skip("no etcd binary to list the flags")
    out = subprocess.run([ETCD, "--help"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    flags = re.findall(r"^  --([a-z0-9-]+)(?: '([^']*)'| (\S+))?$", text, re.M)
    names = [(f[0], f[1] if f[1] or not f[2] else f[2]) for f in flags]
    assert len(names) >= 75, text  # 3.4 lists 80; a parse gone wrong lists few
    return names


def readme_table_flags():
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    section = text[text.index("\n## Flags"):]
    section = section[:section.index("\n## ", 1)]
    rows = [l for l in section.splitlines() if l.startswith("| `--")]
    return {name for row in rows for name in re.findall(r"`--([a-z0-9-]+)`", row.split("|")[1])}


def test_every_etcd_flag_is_in_the_readme_table():
    table = readme_table_flags()
    missing = [name for name, _ in etcd_flags() if name not in table]
    assert missing == [], "README.md's flags table lacks: %s" % ", ".join(missing)


# etcd's help shows these defaults as words, not values.
DEFAULT_VALUE = {"data-dir": None, "max-concurrent-streams": "4294967295", "config-file": None}


@metad_only
def test_every_etcd_flag_is_accepted_with_its_default():
    refused = []
    for name, default in etcd_flags():
        value = DEFAULT_VALUE.get(name, default)
        if name in ("version", "help") or (name in DEFAULT_VALUE and value is None):
            continue
        arg = "--%s=%s" % (name, value) if value is not None else "--" + name
        # --version ends the run once the flags are parsed.
        p = subprocess.run([METAD_BIN, arg, "--version"], capture_output=True, text=True,
                           timeout=30)
        if p.returncode != 0 or "metad Version" not in p.stdout:
            refused.append("%s: %s" % (arg, p.stderr.strip()))
    assert refused == []


def start_refused(tmp_path, *args):
    url = "http://127.0.0.1:%d" % free_port()
    argv = [METAD_BIN, "--data-dir", str(tmp_path / "d"), "--listen-client-urls", url,
            "--advertise-client-urls", url, "--listen-peer-urls",
            "http://127.0.0.1:%d" % free_port()] + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert p.returncode != 0, "%s was not refused" % (args,)
    assert not os.path.exists(tmp_path / "d"), "refused after creating the data dir"
    return p.stderr


@metad_only
@pytest.mark.parametrize("args,why", [
    (["--enable-v2"], "v3 API"),
    (["--experimental-enable-v2v3", "/v2/"], "v3 API"),
    (["--proxy", "readonly"], "v2 proxy"),
    (["--discovery", "https://discovery.etcd.io/abc"], "discovery service"),
    (["--discovery-srv", "example.com"], "DNS SRV"),
    (["--proxy", "sometimes"], "invalid value"),
    (["--discovery-fallback", "maybe"], "invalid value"),
    (["--log-outputs", "systemd/journal"], "journald"),
    (["--logger", "glog"], "unknown logger"),
    (["--grpc-keepalive-min-time", "5"], "invalid duration"),
])
def test_unservable_values_are_refused_at_start(tmp_path, args, why):
    assert why in start_refused(tmp_path, *args)


@metad_only
def test_backend_batch_flags_set_the_checkpoint_period(server_factory):
    """--backend-batch-interval is metad's checkpoint period: a put is in
    the table files (durable without the log) well before the default 30 s."""
    srv = server_factory(extra_args=["--backend-batch-interval", "200ms",
                                     "--backend-batch-limit", "5"])
    kv = srv.kv()
    kv.Put(etcdrpc.PutRequest(key=b"a", value=b"1"), timeout=10)
    wt = os.path.join(srv.data_dir, "kv.wt")
    before = os.stat(wt).st_mtime_ns
    kv.Put(etcdrpc.PutRequest(key=b"b", value=b"2"), timeout=10)
    end = time.monotonic() + 10
    while os.stat(wt).st_mtime_ns == before:
        assert time.monotonic() < end, "no checkpoint within 10 s"
        time.sleep(0.05)  # poll interval for the checkpoint's file write


def test_slow_apply_warning(server_factory):
    """--experimental-warning-apply-duration: a slower apply is logged in
    etcd's words (1ns: every one). Also against etcd 3.4 (with zap)."""
    args = ["--experimental-warning-apply-duration", "1ns"]
    srv = server_factory(extra_args=args + (["--logger", "zap"] if IS_REFERENCE_ETCD else []))
    srv.kv().Put(etcdrpc.PutRequest(key=b"slow", value=b"v"), timeout=10)
    end = time.monotonic() + 10
    while '"msg":"apply request took too long"' not in srv.log_text():
        assert time.monotonic() < end, srv.log_tail()
        time.sleep(0.05)  # poll interval for the log line
    plain = server_factory()
    plain.kv().Put(etcdrpc.PutRequest(key=b"fast", value=b"v"), timeout=10)
    assert "apply request took too long" not in plain.log_text()

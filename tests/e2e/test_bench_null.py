"""metad-bench's null server, which the benchmark notes use to measure gRPC
core's own cost per call: answered at once and from a reply thread
(--reply-thread), every request gets its empty OK answer and the server
stops cleanly, counting what it served."""

import json
import os
import re
import subprocess
import time

import pytest

from harness import METAD_BIN, free_port

BENCH = os.path.join(os.path.dirname(METAD_BIN), "metad-bench")
TOTAL = 3000


def wait_listening(log_path, proc, deadline=20.0):
    # serve-null prints its "listening" line once the server has started;
    # polled from its stderr file, so a server that never prints cannot hang
    # the test past the deadline
    end = time.monotonic() + deadline
    while True:
        with open(log_path) as f:
            text = f.read()
        if "listening on" in text or proc.poll() is not None or time.monotonic() >= end:
            return text
        time.sleep(0.02)


@pytest.mark.parametrize("opts", [[], ["--reply-thread"]])
def test_serve_null_answers_every_call(opts, tmp_path):
    port = free_port()
    ep = "127.0.0.1:%d" % port
    log_path = tmp_path / "serve-null.log"
    with open(log_path, "w") as log:
        srv = subprocess.Popen([BENCH, "serve-null", "--endpoints", ep, "--duration", "60"] + opts,
                               stderr=log)
    try:
        line = wait_listening(log_path, srv)
        assert "listening on " + ep in line, line
        assert ("a reply thread" in line) == bool(opts), line
        out = subprocess.run([BENCH, "put", "--endpoints", ep, "--clients", "50", "--conns", "5",
                              "--total", str(TOTAL), "--duration", "30", "--json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        assert res["ok"] == TOTAL and res["errors"] == 0, res
    finally:
        srv.send_signal(2)  # Ctrl-C: shut down and report
        srv.wait(timeout=30)
    err = log_path.read_text()
    assert srv.returncode == 0, err
    served = re.search(r"served (\d+) calls", err)
    assert served is not None, err
    assert int(served.group(1)) >= TOTAL

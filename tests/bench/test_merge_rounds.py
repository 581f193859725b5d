"""tools/bench/merge_rounds.py: a workload's two rounds make one row."""
import json
import os
import subprocess
import sys

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "bench", "merge_rounds.py")


def run(tmp_path, rounds, cpus):
    base = tmp_path / "metad-put1"
    for r, (j, c) in enumerate(zip(rounds, cpus), 1):
        if j is not None:
            (tmp_path / f"metad-put1.{r}.json").write_text(json.dumps(j))
        if c is not None:
            (tmp_path / f"metad-put1.{r}.cpu").write_text(c)
    subprocess.run([sys.executable, TOOL, str(base)], check=True)
    cpu = tmp_path / "metad-put1.cpu"
    return json.loads((tmp_path / "metad-put1.json").read_text()), (cpu.read_text() if cpu.exists() else None)


def one(ok, secs, p50, p99, mn, avg, cpu_s, errors=0, codes=None):
    return {"workload": "put", "ok": ok, "seconds": secs, "rps": ok / secs, "errors": errors,
            "latency_ms": {"avg": avg, "p50": p50, "p99": p99, "min": mn},
            "client_cpu_s": cpu_s, "error_codes": codes or {}, "first_error": None}


def test_rounds_add_up(tmp_path):
    a = one(3000, 1.0, 0.2, 0.5, 0.10, 0.30, 0.3)
    b = one(1000, 2.0, 0.4, 0.9, 0.15, 0.90, 0.1, errors=2,
            codes={"UNAVAILABLE": 2})
    b["first_error"] = {"code": "UNAVAILABLE", "message": "x"}
    m, cpu = run(tmp_path, [a, b], ["30 100\n", "12 100\n"])
    assert m["ok"] == 4000 and m["seconds"] == 3.0
    assert abs(m["rps"] - 4000 / 3) < 1e-9   # over both rounds, not the mean of the two rates
    assert m["latency_ms"]["p50"] == 0.4 and m["latency_ms"]["p99"] == 0.9   # worse round
    assert m["latency_ms"]["min"] == 0.10
    assert abs(m["latency_ms"]["avg"] - 0.45) < 1e-9   # weighted by requests
    assert abs(m["client_cpu_us_per_req"] - 100.0) < 1e-6
    assert m["errors"] == 2 and m["error_codes"] == {"UNAVAILABLE": 2}
    assert m["first_error"]["code"] == "UNAVAILABLE"
    assert cpu.split() == ["42", "100"]


def test_a_failed_round_fails_the_row(tmp_path):
    a = one(3000, 1.0, 0.2, 0.5, 0.1, 0.3, 0.3)
    m, _ = run(tmp_path, [a, {"failed": True}], ["30 100\n", "12 100\n"])
    assert m == {"failed": True}


def test_a_missing_round_fails_the_row_and_its_cpu(tmp_path):
    a = one(3000, 1.0, 0.2, 0.5, 0.1, 0.3, 0.3)
    m, cpu = run(tmp_path, [a, None], ["30 100\n", None])
    assert m == {"failed": True}
    assert cpu is None

#!/usr/bin/env python3
"""merge_rounds.py BASE: one result from a workload's two rounds (run.sh's pair).

Reads BASE.1.json, BASE.2.json (metad-bench --json) and BASE.1.cpu, BASE.2.cpu
("ticks hz", the servers' CPU during the round); writes BASE.json and BASE.cpu.
Throughput and CPU are over both rounds; each latency percentile is the worse
round's (the same rule for both servers); a failed round fails the workload.
"""
import json
import sys


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"failed": True}


def merge(rounds):
    if any(j.get("failed") for j in rounds):
        return {"failed": True}
    n = sum(j.get("ok", 0) for j in rounds)
    secs = sum(j.get("seconds", 0) for j in rounds)
    m = dict(rounds[0])
    m["ok"], m["seconds"] = n, secs
    m["rps"] = n / secs if secs else 0
    m["errors"] = sum(j.get("errors", 0) for j in rounds)
    m["first_error"] = next((j["first_error"] for j in rounds if j.get("first_error")), None)
    lat = {}
    for k in rounds[0].get("latency_ms", {}):
        v = [j.get("latency_ms", {}).get(k) for j in rounds]
        v = [x for x in v if x is not None]
        if not v:
            continue
        if k == "avg":
            lat[k] = sum(j["latency_ms"]["avg"] * j.get("ok", 0) for j in rounds) / n if n else v[0]
        else:
            lat[k] = min(v) if k == "min" else max(v)
    m["latency_ms"] = lat
    if n and all("client_cpu_s" in j for j in rounds):
        m["client_cpu_s"] = sum(j["client_cpu_s"] for j in rounds)
        m["client_cpu_us_per_req"] = m["client_cpu_s"] * 1e6 / n
    codes = {}
    for j in rounds:
        for c, k in (j.get("error_codes") or {}).items():
            codes[c] = codes.get(c, 0) + k
    m["error_codes"] = codes
    return m


def main():
    base = sys.argv[1]
    rounds = [read_json(f"{base}.{r}.json") for r in (1, 2)]
    ticks, hz = 0, None
    for r in (1, 2):
        try:
            with open(f"{base}.{r}.cpu") as f:
                t = f.read().split()
            ticks, hz = ticks + int(t[0]), int(t[1])
        except (OSError, ValueError, IndexError):
            hz = None
            break
    with open(base + ".json", "w") as f:
        json.dump(merge(rounds), f)
    if hz is not None:
        with open(base + ".cpu", "w") as f:
            f.write(f"{ticks} {hz}\n")


if __name__ == "__main__":
    main()

"""Wait until a member has applied a Raft index; print the milliseconds since
a start time.

    /usr/bin/python3 tools/bench/applied_wait.py CLIENT_PORT INDEX T0_NS LIMIT_S

Reads etcd_server_proposals_applied_total (the applied index, a gauge in
etcd and metad alike) from the member's /metrics every 50 ms, from this one
process. The catch-up rows used to run etcdctl and a Python per poll: ~110 ms
of CPU every 116 ms, most of a core on a 2-core machine, taken from the
leader and the learner being timed. T0_NS is time.time_ns() (date +%s%N) at
the learner's launch. Exit status 1 if the index is not reached within
LIMIT_S seconds of T0_NS.
"""
import sys
import time
import urllib.request


def applied(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("etcd_server_proposals_applied_total "):
                    return int(float(line.split()[1]))
    except OSError:
        pass  # not listening yet: the learner serves once it has caught up
    return -1


def main():
    port, index, t0, limit = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    while time.time_ns() - t0 < limit * 1e9:
        if applied(port) >= index:
            # Timed when the answer came.
            print((time.time_ns() - t0) // 1000000)
            return 0
        time.sleep(0.05)  # poll interval
    return 1


if __name__ == "__main__":
    sys.exit(main())

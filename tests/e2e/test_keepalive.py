"""gRPC keepalive enforcement (issue 15): a client that pings more often
than --grpc-keepalive-min-time (5 s by default) is sent GOAWAY
ENHANCE_YOUR_CALM "too_many_pings" and loses its connection, as etcd's
gRPC-Go server does; with a lower minimum the same client is left alone.
Passes against the reference etcd too.

The client is python3-grpcio (gRPC core, as metad) in a child process, so
its own log line about the GOAWAY can be read from its stderr.
"""

import subprocess
import sys

from harness import IS_REFERENCE_ETCD

CLIENT = r"""
import os, sys, time
import grpc
from etcd3 import etcdrpc

target, seconds = sys.argv[1], float(sys.argv[2])
# A ping every 200 ms, with or without data, for as long as the call lasts.
opts = [("grpc.keepalive_time_ms", 200), ("grpc.keepalive_timeout_ms", 10000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_time_between_pings_ms", 200)]
ch = grpc.insecure_channel(target, options=opts)

def requests():
    yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=b"ka"))
    time.sleep(seconds + 30)  # keep the stream (a call in progress) open

try:
    for _ in etcdrpc.WatchStub(ch).Watch(requests(), timeout=seconds):
        pass
    print("ENDED", flush=True)
except grpc.RpcError as e:
    print("ERROR", e.code().name, flush=True)
os._exit(0)
"""

TOO_MANY_PINGS = 'Received a GOAWAY with error code ENHANCE_YOUR_CALM and debug data ' \
                 'equal to "too_many_pings"'


def run_client(srv, seconds):
    p = subprocess.run([sys.executable, "-c", CLIENT, srv.target, str(seconds)],
                       capture_output=True, text=True, timeout=seconds + 60,
                       env={"GRPC_VERBOSITY": "ERROR", "PATH": "/usr/bin:/bin"})
    return p.stdout.strip(), p.stderr


def zap():
    return ["--logger", "zap"] if IS_REFERENCE_ETCD else []


def test_pinging_faster_than_the_minimum_gets_goaway(server_factory):
    srv = server_factory(extra_args=zap())
    out, err = run_client(srv, 20)
    # Told off within a few pings, long before the call's 20 s deadline.
    assert out == "ERROR UNAVAILABLE", (out, err)
    assert TOO_MANY_PINGS in err


def test_lower_minimum_allows_the_same_pings(server_factory):
    srv = server_factory(extra_args=zap() + ["--grpc-keepalive-min-time", "100ms"])
    out, err = run_client(srv, 3)
    assert out == "ERROR DEADLINE_EXCEEDED", (out, err)  # the call's own deadline
    assert TOO_MANY_PINGS not in err

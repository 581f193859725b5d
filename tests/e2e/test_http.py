"""HTTP on the client port (issue 14): /health, /version, /metrics and etcd's
JSON gateway under /v3/, with curl, over plain TCP and over TLS on the very
port the gRPC clients use. Also passes against the reference etcd
(METAD_BIN=/usr/bin/etcd) except where etcd 3.5 behaviour is marked."""

import base64
import json
import re
import subprocess
import threading
import time

from etcd3 import etcdrpc

import watchstream
from harness import IS_REFERENCE_ETCD_34, RPC_TIMEOUT

CURL_TIMEOUT = 10


def curl(srv, path, body=None, extra=(), timeout=CURL_TIMEOUT):
    """(HTTP status, body text) of one request made with curl."""
    cmd = ["curl", "-s", "-m", str(timeout), "-w", "\n%{http_code}"]
    if srv.tls:
        cmd += ["--cacert", srv.certs["ca"], "--cert", srv.certs["client"],
                "--key", srv.certs["client-key"]]
    if body is not None:
        cmd += ["-X", "POST", "-d", body if isinstance(body, str) else json.dumps(body)]
    cmd += list(extra) + [srv.client_url + path]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5)
    text, _, status = p.stdout.rpartition("\n")
    return int(status or 0), text


def post(srv, path, body):
    status, text = curl(srv, path, body)
    return status, json.loads(text)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def parse_metrics(text):
    """Prometheus text format -> {(name, frozenset(labels)): value}."""
    out = {}
    families = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            if line.startswith("# TYPE "):
                families.append(line.split()[2])
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?', line)
        assert m, "not Prometheus text: %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    assert len(families) == len(set(families)), "a metric family appears twice"
    return out


def metric(ms, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in ms.items() if n == name and want <= set(ls))


def test_version_and_health(server):
    status, text = curl(server, "/version")
    assert status == 200
    v = json.loads(text)
    assert re.fullmatch(r"3\.\d+\.\d+", v["etcdserver"]) and v["etcdcluster"].startswith("3.")
    status, text = curl(server, "/health")
    assert status == 200 and json.loads(text)["health"] == "true"
    if not IS_REFERENCE_ETCD_34:
        assert json.loads(text) == {"health": "true", "reason": ""}
        status, text = curl(server, "/health?serializable=true")
        assert status == 200 and json.loads(text)["health"] == "true"
        assert curl(server, "/livez") == (200, "ok\n") or curl(server, "/livez")[0] == 200
        assert curl(server, "/readyz")[0] == 200
    assert curl(server, "/no/such/path")[0] == 404


def test_health_reports_alarms(server):
    m = server.maintenance()
    m.Alarm(etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.ACTIVATE, memberID=1,
                                 alarm=etcdrpc.NOSPACE), timeout=RPC_TIMEOUT)
    status, text = curl(server, "/health")
    assert status == 503 and json.loads(text)["health"] == "false"
    if not IS_REFERENCE_ETCD_34:
        assert json.loads(text)["reason"] == "ALARM NOSPACE"
        status, text = curl(server, "/health?exclude=NOSPACE")
        assert status == 200 and json.loads(text)["health"] == "true"
    m.Alarm(etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.DEACTIVATE, memberID=1,
                                 alarm=etcdrpc.NOSPACE), timeout=RPC_TIMEOUT)
    assert curl(server, "/health")[0] == 200


def test_metrics_move_with_writes(server):
    status, text = curl(server, "/metrics")
    assert status == 200
    before = parse_metrics(text)
    assert metric(before, "etcd_server_has_leader") == 1
    assert metric(before, "etcd_server_is_leader") == 1
    assert metric(before, "etcd_mvcc_db_total_size_in_bytes") > 0
    assert metric(before, "process_resident_memory_bytes") > 0
    c = server.client()
    for i in range(5):
        c.put("m%d" % i, "v")
        c.get("m%d" % i)
    after = parse_metrics(curl(server, "/metrics")[1])
    assert metric(after, "etcd_mvcc_put_total") >= metric(before, "etcd_mvcc_put_total") + 5
    assert (metric(after, "grpc_server_handled_total", grpc_method="Range", grpc_code="OK")
            >= metric(before, "grpc_server_handled_total", grpc_method="Range",
                      grpc_code="OK") + 5)
    assert (metric(after, "grpc_server_started_total", grpc_method="Put")
            >= metric(before, "grpc_server_started_total", grpc_method="Put") + 5)
    assert (metric(after, "etcd_network_client_grpc_received_bytes_total")
            > metric(before, "etcd_network_client_grpc_received_bytes_total"))
    assert (metric(after, "etcd_server_proposals_committed_total")
            >= metric(before, "etcd_server_proposals_committed_total") + 5)


def test_metrics_count_stream_messages_and_stream_ends(server):
    """grpc-go-prometheus's counters as etcd serves them: a unary call
    receives one message and sends one only when it succeeds; a stream
    counts each message, and a client that goes away ends it as Canceled."""
    def scrape():
        return parse_metrics(curl(server, "/metrics")[1])

    def delta(name, **labels):
        return metric(after, name, **labels) - metric(before, name, **labels)

    before = scrape()
    c = server.client()
    c.put("msgs", "1")
    rc, _, err = server.ctl("put", "", "v")        # refused: empty key
    assert rc != 0 and "key is not provided" in err
    with server.new_channel() as ch:
        ws = watchstream.WatchStream(ch)
        ws.create(b"msgs")
        ws.created()
        c.put("msgs", "2")
        ws.events(1)
        ws.close()      # the client cancels the stream
    watch = dict(grpc_method="Watch", grpc_type="bidi_stream")
    end = time.monotonic() + 10
    while True:
        after = scrape()
        if delta("grpc_server_handled_total", **watch) >= 1 or time.monotonic() > end:
            break
        time.sleep(0.05)  # poll interval
    put = dict(grpc_method="Put", grpc_type="unary")
    assert delta("grpc_server_started_total", **put) == 3
    assert delta("grpc_server_msg_received_total", **put) == 3
    assert delta("grpc_server_msg_sent_total", **put) == 2
    assert delta("grpc_server_handled_total", grpc_code="InvalidArgument", **put) == 1
    assert delta("grpc_server_started_total", **watch) == 1
    # The create request; the created response and the event.
    assert delta("grpc_server_msg_received_total", **watch) == 1
    assert delta("grpc_server_msg_sent_total", **watch) == 2
    assert delta("grpc_server_handled_total", grpc_code="Canceled", **watch) == 1


def histogram_ok(ms, name):
    """Cumulative buckets with etcd's bounds (1 ms doubling to 8.192 s),
    +Inf equal to the count; returns the count."""
    les = [0.001 * 2 ** i for i in range(14)]
    counts = [metric(ms, name + "_bucket", le="%g" % le) for le in les]
    inf = metric(ms, name + "_bucket", le="+Inf")
    assert counts == sorted(counts) and counts[-1] <= inf
    assert inf == metric(ms, name + "_count")
    assert (name + "_sum", frozenset()) in ms
    return inf


def test_metrics_issue_list(server):
    """The names issue 14 lists that came last: the live key count, failed
    proposals, and the WAL fsync and backend commit histograms."""
    c = server.client()
    before = parse_metrics(curl(server, "/metrics")[1])
    for i in range(6):
        c.put("keys/%d" % i, "v")
    c.put("keys/0", "again")          # not a new key
    c.delete("keys/5")
    after = parse_metrics(curl(server, "/metrics")[1])
    assert (metric(after, "etcd_debugging_mvcc_keys_total")
            == metric(before, "etcd_debugging_mvcc_keys_total") + 5)
    assert ("etcd_server_proposals_failed_total", frozenset()) in after
    assert (histogram_ok(after, "etcd_disk_wal_fsync_duration_seconds")
            >= histogram_ok(before, "etcd_disk_wal_fsync_duration_seconds") + 1)
    assert (histogram_ok(after, "etcd_disk_backend_commit_duration_seconds")
            >= histogram_ok(before, "etcd_disk_backend_commit_duration_seconds"))
    # The count survives a restart (metad keeps it with the store).
    server.stop()
    server.start()
    again = parse_metrics(curl(server, "/metrics")[1])
    assert (metric(again, "etcd_debugging_mvcc_keys_total")
            == metric(after, "etcd_debugging_mvcc_keys_total"))


def gateway_kv(srv):
    status, r = post(srv, "/v3/kv/put", {"key": b64("gw/a"), "value": b64("1")})
    assert status == 200, r
    rev = int(r["header"]["revision"])   # 64-bit integers are strings
    assert isinstance(r["header"]["revision"], str)
    status, r = post(srv, "/v3/kv/range", {"key": b64("gw/a")})
    assert status == 200
    (kv,) = r["kvs"]
    assert kv["key"] == b64("gw/a") and kv["value"] == b64("1")
    assert kv["mod_revision"] == str(rev) and kv["version"] == "1" and r["count"] == "1"
    # lowerCamelCase field names and enum names are accepted, as jsonpb does.
    post(srv, "/v3/kv/put", {"key": b64("gw/b"), "value": b64("2")})
    status, r = post(srv, "/v3/kv/range", {"key": b64("gw/"), "range_end": b64("gw0"),
                                           "sort_order": "DESCEND", "keysOnly": True})
    assert [kv["key"] for kv in r["kvs"]] == [b64("gw/b"), b64("gw/a")]
    assert all("value" not in kv for kv in r["kvs"])
    status, r = post(srv, "/v3/kv/txn", {
        "compare": [{"key": b64("gw/a"), "result": "EQUAL", "target": "VALUE",
                     "value": b64("1")}],
        "success": [{"request_put": {"key": b64("gw/c"), "value": b64("3")}}],
        "failure": [{"request_range": {"key": b64("gw/a")}}]})
    assert status == 200 and r["succeeded"] is True
    assert "response_put" in r["responses"][0]
    status, r = post(srv, "/v3/kv/deleterange", {"key": b64("gw/"), "range_end": b64("gw0")})
    assert status == 200 and r["deleted"] == "3"
    # Errors: etcd's gRPC status as the gateway writes it.
    status, r = post(srv, "/v3/kv/range", {"key": ""})
    assert status == 400
    assert r["code"] == 3 and r["error"] == r["message"] == "etcdserver: key is not provided"
    status, r = post(srv, "/v3/kv/range", {"key": b64("x"), "revision": "999999"})
    assert status == 400 and r["code"] == 11
    status, text = curl(srv, "/v3/kv/range", "{not json")
    assert status == 400 and json.loads(text)["code"] == 3


def test_gateway_kv(server):
    gateway_kv(server)
    # The gateway and gRPC see one store.
    server.client().put("gw/grpc", "g")
    status, r = post(server, "/v3/kv/range", {"key": b64("gw/grpc")})
    assert r["kvs"][0]["value"] == b64("g")
    # /v3beta is the same gateway.
    status, r = post(server, "/v3beta/kv/range", {"key": b64("gw/grpc")})
    assert status == 200 and r["count"] == "1"


def test_gateway_lease(server):
    status, r = post(server, "/v3/lease/grant", {"TTL": 60})
    assert status == 200
    lid = r["ID"]
    assert r["TTL"] == "60"
    post(server, "/v3/kv/put", {"key": b64("leased"), "value": b64("v"), "lease": lid})
    status, r = post(server, "/v3/lease/timetolive", {"ID": lid, "keys": True})
    assert status == 200 and r["ID"] == lid and r["grantedTTL"] == "60"
    assert r["keys"] == [b64("leased")]
    status, r = post(server, "/v3/lease/leases", {})
    assert lid in [x["ID"] for x in r["leases"]]
    # keepalive is a stream: one response per request line, then it stays open.
    status, text = curl(server, "/v3/lease/keepalive", {"ID": lid}, timeout=2)
    first = json.loads(text.splitlines()[0])
    assert first["result"]["ID"] == lid and first["result"]["TTL"] == "60"
    status, r = post(server, "/v3/lease/revoke", {"ID": lid})
    assert status == 200
    status, r = post(server, "/v3/kv/range", {"key": b64("leased")})
    assert "kvs" not in r
    status, r = post(server, "/v3/lease/revoke", {"ID": lid})
    assert status == 404 and r["message"] == "etcdserver: requested lease not found"


def test_gateway_watch_streams_events(server):
    proc = subprocess.Popen(
        ["curl", "-s", "-N", "-m", "20", "-X", "POST", "-d",
         json.dumps({"create_request": {"key": b64("wk")}}),
         server.client_url + "/v3/watch"], stdout=subprocess.PIPE, text=True)
    lines = []

    def read():
        for line in proc.stdout:
            lines.append(json.loads(line))
    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline:
            time.sleep(0.02)   # poll for the created response
        assert lines and lines[0]["result"]["created"] is True
        server.client().put("wk", "v1")
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        ev = lines[1]["result"]["events"][0]
        assert ev["kv"]["key"] == b64("wk") and ev["kv"]["value"] == b64("v1")
    finally:
        proc.kill()
        proc.wait()


def test_gateway_election(server):
    status, r = post(server, "/v3/lease/grant", {"TTL": 60})
    lid = r["ID"]
    status, r = post(server, "/v3/election/campaign",
                     {"name": b64("el"), "lease": lid, "value": b64("me")})
    assert status == 200, r
    leader = r["leader"]
    status, r = post(server, "/v3/election/leader", {"name": b64("el")})
    assert status == 200 and r["kv"]["value"] == b64("me")
    status, r = post(server, "/v3/election/proclaim", {"leader": leader, "value": b64("me2")})
    assert status == 200
    status, r = post(server, "/v3/election/leader", {"name": b64("el")})
    assert r["kv"]["value"] == b64("me2")
    status, r = post(server, "/v3/election/resign", {"leader": leader})
    assert status == 200


def test_https_on_the_grpc_port(tls_server):
    srv = tls_server
    status, text = curl(srv, "/health")
    assert status == 200 and json.loads(text)["health"] == "true"
    gateway_kv(srv)
    status, r = post(srv, "/v3/kv/put", {"key": b64("tls/k"), "value": b64("v")})
    assert status == 200
    # The same port serves etcdctl and python-etcd3 over gRPC.
    assert srv.ctl_ok("get", "tls/k", "--print-value-only").strip() == "v"
    value, _ = srv.client().get("tls/k")
    assert value == b"v"
    assert curl(srv, "/metrics")[0] == 200


def test_https_needs_a_client_certificate(tls_server):
    p = subprocess.run(["curl", "-s", "-m", "10", "-w", "\n%{http_code}", "--cacert",
                        tls_server.certs["ca"], tls_server.client_url + "/v3/kv/range",
                        "-X", "POST", "-d", json.dumps({"key": b64("k")})],
                       capture_output=True, text=True, timeout=20)
    status = p.stdout.rpartition("\n")[2]
    # etcd refuses the handshake; metad answers 403 (its TLS library cannot
    # require the certificate during the handshake). Either way: no data.
    assert p.returncode != 0 or status == "403"


def test_listen_metrics_urls(server_factory):
    from harness import free_port
    port = free_port()
    srv = server_factory(extra_args=["--listen-metrics-urls", "http://127.0.0.1:%d" % port])
    p = subprocess.run(["curl", "-s", "-m", "10", "http://127.0.0.1:%d/metrics" % port],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0
    assert metric(parse_metrics(p.stdout), "etcd_server_has_leader") == 1
    p = subprocess.run(["curl", "-s", "-m", "10", "http://127.0.0.1:%d/health" % port],
                       capture_output=True, text=True, timeout=20)
    assert json.loads(p.stdout)["health"] == "true"
    assert srv.ctl_ok("endpoint", "health") is not None

"""--cors, --host-whitelist and --metrics extensive (issue 14) on a real
server, driven with python's http.client and etcdctl.

The expected answers are etcd's. Each was checked by hand against Debian's
etcd 3.4.23 (/usr/bin/etcd, 4 Dec 2026), and the whole file also passes
against it: METAD_BIN=/usr/bin/etcd /usr/bin/python3 -m pytest
tests/e2e/test_http_access.py (the few metad-only asserts are skipped).
What was checked there:
- default --cors '*': every response of the client port, and any OPTIONS
  (200, no body), carries Access-Control-Allow-Origin: * with
  -Methods "POST, GET, OPTIONS, PUT, DELETE" and -Headers "accept,
  content-type, authorization"; --listen-metrics-urls carries none;
- --cors URL list: only a request whose Origin is one of them (exactly: a
  browser's "http://a.example" does not match "http://a.example:80") gets
  the headers, with its own origin; OPTIONS to any path is 200 either way;
  a value that is no host:port URL stops etcd with exit 2 and "invalid value
  ... for flag -cors: <reason>";
- --host-whitelist: on plain HTTP a Host whose name (port dropped, case
  kept, IPv6 without brackets) is not listed gets 421, text/plain,
  X-Content-Type-Options: nosniff and etcd's CVE-2018-5702 text naming it
  with Go's %q, OPTIONS too, /metrics of the client port too; HTTPS, gRPC
  (etcdctl) and --listen-metrics-urls are never checked; "*" in the list
  lets every Host in;
- --metrics extensive: grpc_server_handling_seconds{grpc_method,
  grpc_service,grpc_type} with buckets 0.005 ... 10 and +Inf, every method
  present at zero before any call, Put's moving with etcdctl puts; basic
  has no such family; an unknown value (--metrics bogus) starts and serves
  basic: etcd checks no value and prints nothing about it.
"""

import http.client
import os
import re
import socket
import ssl
import subprocess

import pytest

from harness import IS_REFERENCE_ETCD, METAD_BIN, free_port

TIMEOUT = 10
CORS = {
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
    "Access-Control-Allow-Headers": "accept, content-type, authorization",
}
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
           "+Inf"]


def request(srv, method, path, headers=(), body=None, port=None):
    """(status, headers as a dict, body text) of one request to srv's client
    port (or to port on 127.0.0.1, plain HTTP)."""
    if srv.tls and port is None:
        ctx = ssl.create_default_context(cafile=srv.certs["ca"])
        ctx.load_cert_chain(srv.certs["client"], srv.certs["client-key"])
        conn = http.client.HTTPSConnection("127.0.0.1", srv.client_port, timeout=TIMEOUT,
                                           context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port or srv.client_port,
                                          timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def cors_of(headers):
    return {k: v for k, v in headers.items() if k.lower().startswith("access-control-")}


def refusal(name):
    """etcd's 421 text for Host name name (ASCII: Go's %q is "name")."""
    return ("\n"
            "etcd received your request, but the Host header was unrecognized.\n"
            "\n"
            "To fix this, choose one of the following options:\n"
            "- Enable TLS, then any HTTPS request will be allowed.\n"
            "- Add the hostname you want to use to the whitelist in settings.\n"
            "  - e.g. etcd --host-whitelist \"%s\"\n"
            "\n"
            "This requirement has been added to help prevent \"DNS Rebinding\" attacks "
            "(CVE-2018-5702).\n"
            "\n" % name)


# ---- --cors ----

def test_cors_default_allows_every_origin(server_factory):
    mport = free_port()
    srv = server_factory(extra_args=["--listen-metrics-urls", "http://127.0.0.1:%d" % mport])
    star = dict(CORS, **{"Access-Control-Allow-Origin": "*"})
    status, h, _ = request(srv, "GET", "/version")
    assert status == 200 and cors_of(h) == star
    status, h, _ = request(srv, "GET", "/health", [("Origin", "http://x.example")])
    assert status == 200 and cors_of(h) == star
    status, h, _ = request(srv, "POST", "/v3/kv/put", body='{"key":"YQ==","value":"Yg=="}')
    assert status == 200 and cors_of(h) == star
    assert cors_of(request(srv, "GET", "/no/such/path")[1]) == star
    # a preflight, or any OPTIONS: 200 with no body, before any routing
    for path in ("/v3/kv/put", "/no/such/path", "/metrics"):
        status, h, body = request(srv, "OPTIONS", path,
                                  [("Origin", "http://x.example"),
                                   ("Access-Control-Request-Method", "POST")])
        assert (status, body, h.get("Content-Length")) == (200, "", "0")
        assert cors_of(h) == star
    # --listen-metrics-urls is served without etcd's access controller
    status, h, _ = request(srv, "GET", "/metrics", port=mport)
    assert status == 200 and cors_of(h) == {}


def test_cors_list_allows_listed_origins_only(server_factory):
    srv = server_factory(extra_args=["--cors", "http://a.example:8080, https://b.example:8443"])
    for origin in ("http://a.example:8080", "https://b.example:8443"):
        status, h, _ = request(srv, "GET", "/version", [("Origin", origin)])
        assert status == 200
        assert cors_of(h) == dict(CORS, **{"Access-Control-Allow-Origin": origin})
    # exact strings: no default-port folding, no other origin, none without one
    for headers in ([("Origin", "http://a.example")], [("Origin", "http://c.example:8080")],
                    []):
        status, h, _ = request(srv, "GET", "/version", headers)
        assert status == 200 and cors_of(h) == {}
    status, h, body = request(srv, "OPTIONS", "/v3/kv/range",
                              [("Origin", "https://b.example:8443"),
                               ("Access-Control-Request-Method", "POST"),
                               ("Access-Control-Request-Headers", "content-type")])
    assert (status, body) == (200, "")
    assert cors_of(h) == dict(CORS, **{"Access-Control-Allow-Origin": "https://b.example:8443"})
    status, h, body = request(srv, "OPTIONS", "/v3/kv/range", [("Origin", "http://evil.example")])
    assert (status, body, cors_of(h)) == (200, "", {})
    # the JSON gateway answers with the headers too, streams included
    status, h, _ = request(srv, "POST", "/v3/kv/range", [("Origin", "http://a.example:8080")],
                           body='{"key":"YQ=="}')
    assert status == 200 and h["Access-Control-Allow-Origin"] == "http://a.example:8080"


@pytest.mark.parametrize("value,why", [
    ("foo", "URL scheme must be http, https, unix, or unixs: foo"),
    ("", "URL scheme must be http, https, unix, or unixs: "),
    ("http://a.example", 'URL address does not have the form "host:port": http://a.example'),
    ("http://a.example:80/x", "URL must not contain a path: http://a.example:80/x"),
    ("http://a.example:80,*", "URL scheme must be http, https, unix, or unixs: *"),
])
def test_cors_value_that_is_no_url_is_refused(tmp_path, value, why):
    url = "http://127.0.0.1:%d" % free_port()
    p = subprocess.run([METAD_BIN, "--data-dir", str(tmp_path / "d"),
                        "--listen-client-urls", url, "--advertise-client-urls", url,
                        "--listen-peer-urls", "http://127.0.0.1:%d" % free_port(),
                        "--cors", value],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 2
    assert p.stderr.splitlines()[0] == 'invalid value "%s" for flag -cors: %s' % (value, why)
    assert not os.path.exists(tmp_path / "d")


# ---- --host-whitelist ----

def test_host_whitelist_refuses_other_hosts_on_plain_http(server_factory):
    mport = free_port()
    srv = server_factory(extra_args=["--host-whitelist", "localhost,example.test",
                                     "--listen-metrics-urls", "http://127.0.0.1:%d" % mport])
    port = srv.client_port
    # http.client sends Host: 127.0.0.1:<port>, not listed
    for method, path, body in (("GET", "/version", None), ("GET", "/health", None),
                               ("GET", "/metrics", None), ("OPTIONS", "/v3/kv/put", None),
                               ("POST", "/v3/kv/put", '{"key":"YQ==","value":"Yg=="}')):
        status, h, text = request(srv, method, path, body=body)
        assert status == 421, (method, path)
        assert text == refusal("127.0.0.1")
        assert h["Content-Type"] == "text/plain; charset=utf-8"
        assert h["X-Content-Type-Options"] == "nosniff"
        assert cors_of(h) == {}
    # the name is compared without its port, exactly (case, IPv6 brackets)
    for host, name in (("LOCALHOST:%d" % port, "LOCALHOST"), ("[::1]:%d" % port, "::1"),
                       ("evil.example", "evil.example")):
        status, _, text = request(srv, "GET", "/version", [("Host", host)])
        assert (status, text) == (421, refusal(name)), host
    for host in ("localhost:%d" % port, "localhost", "example.test:1"):
        status, h, _ = request(srv, "GET", "/version", [("Host", host)])
        assert status == 200, host
        assert h["Access-Control-Allow-Origin"] == "*"
    status, _, text = request(srv, "POST", "/v3/kv/put", [("Host", "localhost")],
                              body='{"key":"YQ==","value":"Yg=="}')
    assert status == 200 and '"revision"' in text
    assert request(srv, "OPTIONS", "/x", [("Host", "localhost:%d" % port)])[0] == 200
    # gRPC is not HTTP/1: etcdctl is served whatever its :authority
    srv.ctl_ok("put", "wl/k", "v")
    assert srv.ctl_ok("get", "wl/k", "--print-value-only").strip() == "v"
    # --listen-metrics-urls has no access controller in etcd
    assert request(srv, "GET", "/metrics", [("Host", "evil.example")], port=mport)[0] == 200
    assert request(srv, "GET", "/health", [("Host", "evil.example")], port=mport)[0] == 200


def raw_status(port, request_bytes):
    """The status code of a hand-made request (0: the connection closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(request_bytes)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    m = re.match(rb"HTTP/1\.\d (\d{3})", data)
    return int(m.group(1)) if m else 0


def test_host_whitelist_survives_odd_hosts(server_factory):
    """Malformed Host values are refused (etcd: 400 from Go's HTTP server for
    the ones it finds invalid, 421 for the rest); the server goes on."""
    srv = server_factory(extra_args=["--host-whitelist", "localhost"])
    for host in (b'a"b\\c', b"caf\xc3\xa9:1", b"", b"x:y:z", b"[::1", b"[::1]", b"a" * 6000,
                 b"a\tb", b":", b"localhost:abc:1", b"%00:1", b"u@localhost:1"):
        req = b"GET /version HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
        assert raw_status(srv.client_port, req) in (400, 421), host
    status, _, text = request(srv, "GET", "/version", [("Host", 'a"b\\c')])
    if status == 421:
        assert '--host-whitelist "a\\"b\\\\c"' in text  # Go's %q
    assert request(srv, "GET", "/version", [("Host", "localhost")])[0] == 200


def test_host_whitelist_with_a_star_lets_every_host_in(server_factory):
    srv = server_factory(extra_args=["--host-whitelist", "example.test,*"])
    assert request(srv, "GET", "/version", [("Host", "evil.example:1")])[0] == 200


def test_host_whitelist_does_not_apply_to_https(server_factory, certs):
    srv = server_factory(certs=certs, extra_args=["--host-whitelist", "example.test"])
    status, h, _ = request(srv, "GET", "/version", [("Host", "evil.example:1")])
    assert status == 200 and h["Access-Control-Allow-Origin"] == "*"
    srv.ctl_ok("put", "wl/tls", "v")


# ---- --metrics ----

def scrape(srv):
    status, _, text = request(srv, "GET", "/metrics")
    assert status == 200
    return text


def handling(text, method):
    """Put's (or method's) histogram lines: {le: n}, sum, count."""
    labels = 'grpc_method="%s",grpc_service="etcdserverpb.KV",grpc_type="unary"' % method
    buckets = {le: int(n) for le, n in re.findall(
        r'^grpc_server_handling_seconds_bucket\{%s,le="([^"]+)"\} (\d+)$' % re.escape(labels),
        text, re.M)}
    s = re.search(r'^grpc_server_handling_seconds_sum\{%s\} (\S+)$' % re.escape(labels), text,
                  re.M)
    c = re.search(r'^grpc_server_handling_seconds_count\{%s\} (\d+)$' % re.escape(labels), text,
                  re.M)
    assert s and c, text
    return buckets, float(s.group(1)), int(c.group(1))


def test_metrics_extensive_serves_handling_time_histograms(server_factory):
    srv = server_factory(extra_args=["--metrics", "extensive"])
    text = scrape(srv)
    assert ("# TYPE grpc_server_handling_seconds histogram" in text.splitlines())
    assert ("# HELP grpc_server_handling_seconds Histogram of response latency (seconds) of "
            "gRPC that had been application-level handled by the server.") in text.splitlines()
    buckets, total, count = handling(text, "Put")
    assert list(buckets) == BUCKETS
    assert (set(buckets.values()), total, count) == ({0}, 0.0, 0)  # there before any call
    for i in range(5):
        srv.ctl_ok("put", "hist/%d" % i, "v")
    buckets, total, count = handling(scrape(srv), "Put")
    assert count == 5 and buckets["+Inf"] == 5 and total > 0
    ns = [buckets[le] for le in BUCKETS]
    assert ns == sorted(ns), "buckets are cumulative"
    # the same methods' other families are there too, and so is every series' type
    assert re.search(r'^grpc_server_handling_seconds_count\{grpc_method="Watch",'
                     r'grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"\} 0$',
                     text, re.M)


def test_metrics_basic_has_no_histograms(server_factory):
    srv = server_factory()
    srv.ctl_ok("put", "basic/k", "v")
    text = scrape(srv)
    assert "grpc_server_handled_total" in text
    assert "grpc_server_handling_seconds" not in text


def test_metrics_unknown_value_is_basic(server_factory):
    srv = server_factory(extra_args=["--metrics", "bogus"])
    srv.ctl_ok("put", "bogus/k", "v")
    assert "grpc_server_handling_seconds" not in scrape(srv)
    if not IS_REFERENCE_ETCD:
        assert "--metrics bogus is neither basic nor extensive" in srv.log_text()

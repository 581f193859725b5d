"""etcd's TLS options on the client port, gRPC and HTTPS alike:
--cipher-suites (TLS 1.2 suites by IANA name), --tls-min-version (TLS1.2 or
TLS1.3; nothing below TLS 1.2 is ever served) and --client-crl-file (a
revoked client certificate is refused). Handshakes are made with openssl
s_client offering "h2" (what gRPC clients offer: the gRPC side) or
"http/1.1" (the HTTPS side), and with etcdctl and curl. Passes against etcd
3.4 too, except --tls-min-version, which etcd 3.4 does not have."""

import os
import subprocess
import time

import pytest

import harness
from harness import IS_REFERENCE_ETCD_34

AES128 = "ECDHE-ECDSA-AES128-GCM-SHA256"
AES256 = "ECDHE-ECDSA-AES256-GCM-SHA384"


def handshake(srv, alpn, *opts, cert="client", key="client-key"):
    """The cipher openssl s_client agreed on, or None when refused."""
    c = srv.certs
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.client_port,
                        "-alpn", alpn, "-CAfile", c["ca"], "-cert", c[cert], "-key", c[key],
                        "-servername", "localhost"] + list(opts),
                       input=b"", capture_output=True, timeout=20)
    out = p.stdout.decode(errors="replace")
    for line in out.splitlines():
        if "Cipher is " in line:
            name = line.split("Cipher is ")[1].strip()
            return None if name == "(NONE)" else name
    return None


def curl(srv, *extra, cert="client", key="client-key"):
    c = srv.certs
    p = subprocess.run(["curl", "-s", "-m", "10", "--cacert", c["ca"], "--cert", c[cert],
                        "--key", c[key]] + list(extra) + [srv.client_url + "/version"],
                       capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout


def test_cipher_suites(server_factory, certs):
    srv = server_factory(certs=certs, extra_args=[
        "--cipher-suites",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])
    for alpn in ("h2", "http/1.1"):
        assert handshake(srv, alpn, "-tls1_2", "-cipher", AES128) == AES128, alpn
        assert handshake(srv, alpn, "-tls1_2", "-cipher", AES256) is None, alpn
    srv.ctl_ok("put", "k", "v")             # etcdctl: gRPC
    assert curl(srv)[0] == 0                  # curl: HTTPS


def test_unknown_cipher_suite_is_refused(server_factory, certs):
    srv = server_factory(certs=certs, start=False, extra_args=["--cipher-suites", "TLS_NOPE"])
    with pytest.raises(Exception):
        srv.start()
    log = srv.log_text()
    assert "unexpected TLS cipher suite" in log and "TLS_NOPE" in log
    srv.killed = True   # it exited on purpose


@pytest.mark.skipif(IS_REFERENCE_ETCD_34, reason="--tls-min-version came with etcd 3.5")
def test_tls_min_version(server_factory, certs):
    srv = server_factory(certs=certs, extra_args=["--tls-min-version", "TLS1.3"])
    for alpn in ("h2", "http/1.1"):
        assert handshake(srv, alpn, "-tls1_2") is None, alpn
        assert handshake(srv, alpn, "-tls1_3") is not None, alpn
    srv.ctl_ok("put", "k", "v")
    assert curl(srv)[0] == 0
    assert curl(srv, "--tls-max", "1.2")[0] != 0
    # The default serves TLS 1.2, never below.
    dflt = server_factory(certs=certs)
    for alpn in ("h2", "http/1.1"):
        assert handshake(dflt, alpn, "-tls1_2") is not None, alpn
        assert handshake(dflt, alpn, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0") is None, alpn


@pytest.fixture
def revoked(certs, tmp_path):
    """A client certificate of the test CA, revoked by a CRL of that CA."""
    d = str(tmp_path)
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True, timeout=30)
    key, csr, crt = (os.path.join(d, n) for n in ("revoked-key.pem", "revoked.csr",
                                                   "revoked.pem"))
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", key)
    run("openssl", "req", "-new", "-key", key, "-subj", "/O=metad test/CN=revoked", "-out", csr)
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", certs["ca"], "-CAkey", certs["ca-key"],
        "-set_serial", "4242", "-days", "30", "-extfile", ext, "-out", crt)
    crl = harness.revoke(certs, d, crt)
    certs = dict(certs, revoked=crt)
    certs["revoked-key"] = key
    return certs, crl


def test_client_crl_file(server_factory, revoked):
    certs, crl = revoked
    srv = server_factory(certs=certs, extra_args=["--client-crl-file", crl])
    srv.ctl_ok("put", "k", "v")
    rc, _, err = srv.ctl("get", "k", tls=srv.tls_args(cert="revoked", key="revoked-key"))
    assert rc != 0, err
    assert curl(srv)[0] == 0
    assert curl(srv, cert="revoked", key="revoked-key")[0] != 0
    # A revoked certificate gets nothing through the gRPC side either.
    assert srv.ctl_ok("get", "k", "--print-value-only") == "v\n"


@pytest.mark.parametrize("allowed,named_ok", [("localhost", True), ("127.0.0.1", True),
                                              ("example.com", False)])
def test_client_cert_allowed_hostname(server_factory, certs, allowed, named_ok):
    """etcd's --client-cert-allowed-hostname: a client certificate must be
    valid for that name (server.pem: SANs localhost, 127.0.0.1, ::1; client.pem
    has none). The harness's own client uses server.pem here, so the server
    starts either way only if that certificate is allowed; otherwise it is
    started with its readiness checked through the refused side."""
    # server.pem (serverAuth and clientAuth) is the harness's client certificate.
    named = dict(certs, client=certs["server"], **{"client-key": certs["server-key"],
                                                  "unnamed": certs["client"],
                                                  "unnamed-key": certs["client-key"]})
    srv = server_factory(certs=named, start=named_ok,
                         extra_args=["--client-cert-allowed-hostname", allowed])
    if not named_ok:
        srv.pick_ports()
        srv._spawn()
        # Serving (TLS handshakes answer), yet every certificate is refused.
        deadline = time.monotonic() + 20
        while handshake(srv, "h2", cert="client", key="client-key") is None:
            assert time.monotonic() < deadline, srv.log_tail()
            time.sleep(0.05)  # poll interval
    # gRPC: the named certificate is served as etcd would, the unnamed one not.
    rc, out, err = srv.ctl("put", "k", "v")
    assert (rc == 0) == named_ok, err
    rc, _, err = srv.ctl("get", "k", tls=srv.tls_args(cert="unnamed", key="unnamed-key"))
    assert rc != 0, err
    # HTTPS on the same port: the same answer.
    assert (curl(srv)[0] == 0) == named_ok
    assert curl(srv, cert="unnamed", key="unnamed-key")[0] != 0

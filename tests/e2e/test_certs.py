"""certs/make-certs.sh: the files it makes, their names and uses, and idempotency.
(No server needed; test_tls.py checks that a server and clients accept them.)"""

import os
import subprocess

import harness

FILES = ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem",
         "client-key.pem", "other-ca.pem", "other-ca-key.pem", "other-client.pem",
         "other-client-key.pem", "other-server.pem", "other-server-key.pem"]


def openssl(*args):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def text(path):
    rc, out = openssl("x509", "-in", path, "-noout", "-text")
    assert rc == 0, out
    return out


def test_makes_every_file_and_is_idempotent(tmp_path):
    out = str(tmp_path / "pki")
    harness.make_certs(out)
    assert sorted(os.listdir(out)) == sorted(FILES)
    stamp = {f: (os.stat(os.path.join(out, f)).st_mtime_ns,
                 open(os.path.join(out, f), "rb").read()) for f in FILES}
    harness.make_certs(out)                       # second run: nothing changes
    for f in FILES:
        p = os.path.join(out, f)
        assert (os.stat(p).st_mtime_ns, open(p, "rb").read()) == stamp[f], f
    for f in FILES:
        if f.endswith("-key.pem"):
            assert os.stat(os.path.join(out, f)).st_mode & 0o077 == 0, "%s is readable" % f
    # A missing file makes it regenerate a consistent set.
    os.remove(os.path.join(out, "client.pem"))
    harness.make_certs(out)
    assert os.path.exists(os.path.join(out, "client.pem"))
    rc, msg = openssl("verify", "-CAfile", os.path.join(out, "ca.pem"),
                      os.path.join(out, "server.pem"), os.path.join(out, "client.pem"))
    assert rc == 0, msg


def test_chains_names_and_usages(certs):
    d = os.path.dirname(certs["ca"])
    p = lambda name: os.path.join(d, name)
    rc, msg = openssl("verify", "-CAfile", p("ca.pem"), p("server.pem"), p("client.pem"))
    assert rc == 0, msg
    rc, msg = openssl("verify", "-CAfile", p("other-ca.pem"), p("other-client.pem"),
                      p("other-server.pem"))
    assert rc == 0, msg
    # The other CA's client must not chain to the test CA, nor ours to the other.
    assert openssl("verify", "-CAfile", p("ca.pem"), p("other-client.pem"))[0] != 0
    assert openssl("verify", "-CAfile", p("other-ca.pem"), p("client.pem"))[0] != 0
    assert openssl("verify", "-CAfile", p("ca.pem"), p("other-server.pem"))[0] != 0

    server = text(p("server.pem"))
    assert "IP Address:127.0.0.1" in server
    assert "IP Address:0:0:0:0:0:0:0:1" in server
    assert "DNS:localhost" in server
    assert "TLS Web Server Authentication" in server
    assert "CA:FALSE" in server
    client = text(p("client.pem"))
    assert "TLS Web Client Authentication" in client
    assert "TLS Web Server Authentication" not in client
    assert "CA:TRUE" in text(p("ca.pem")) and "CA:TRUE" in text(p("other-ca.pem"))
    assert "prime256v1" in server or "P-256" in server
    # Each key matches its certificate.
    for cert, key in [("server.pem", "server-key.pem"), ("client.pem", "client-key.pem"),
                      ("other-client.pem", "other-client-key.pem"),
                      ("other-server.pem", "other-server-key.pem")]:
        rc1, pub1 = openssl("x509", "-in", p(cert), "-noout", "-pubkey")
        rc2, pub2 = openssl("pkey", "-in", p(key), "-pubout")
        assert rc1 == rc2 == 0 and pub1 == pub2, cert


def test_usage_error_without_outdir():
    script = os.path.join(harness.REPO, "certs", "make-certs.sh")
    p = subprocess.run(["bash", script], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "usage" in p.stderr

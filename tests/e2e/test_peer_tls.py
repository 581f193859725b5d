"""Peer TLS options as etcd has them: --peer-auto-tls (self-signed peer
certificates, not verified), --peer-crl-file (a revoked peer certificate is
refused), --peer-cert-allowed-cn / --peer-cert-allowed-hostname (a peer whose
certificate has another CN or name is refused, both ways), and the check of a
peer client certificate's SANs against the address it connects from, which
--experimental-peer-skip-client-san-verification turns off.

Refusal is seen as a user sees it: a 2-member cluster whose members cannot
talk both ways never elects a leader, while the same cluster with the option
changed does."""
import json
import os
import subprocess
import time

import grpc
import pytest

import harness
from harness import wait_for
from etcd3 import etcdrpc

FAST = ["--heartbeat-interval", "50", "--election-timeout", "500"]
WINDOW = 3.0  # seconds without a leader: 6 election timeouts


def run(*a):
    subprocess.run(list(a), check=True, capture_output=True, timeout=30)


def peer_tls_args(cert, key, ca):
    return ["--peer-cert-file", cert, "--peer-key-file", key,
            "--peer-trusted-ca-file", ca, "--peer-client-cert-auth"]


def spawn(cluster):
    for m in cluster.members:
        m._stopping = False
        m._spawn()


def leader_ids(cluster):
    """Each running member's idea of the leader (0: none, or not serving:
    a member serves only once it has published through a leader)."""
    ids = []
    for m in cluster.members:
        try:
            ids.append(m.maintenance().Status(etcdrpc.StatusRequest(), timeout=0.5).leader)
        except grpc.RpcError:  # not serving yet
            ids.append(0)
    return ids


def never_leads(cluster, window=WINDOW):
    """True if no member names a leader for the whole window (polled)."""
    end = time.monotonic() + window
    while time.monotonic() < end:
        if any(leader_ids(cluster)):
            return False
        time.sleep(0.05)  # poll interval
    return True


def works(cluster):
    """A leader is agreed within the deadline, and a write through one member
    is read linearizably through the other."""
    for m in cluster.members:
        m.wait_ready()
    cluster.leader(deadline=10.0)
    a, b = cluster.members[0], cluster.members[-1]
    assert a.ctl_ok("put", "peer-tls", "ok") == "OK\n"
    assert b.ctl_ok("get", "peer-tls", "--print-value-only") == "ok\n"
    return True


def leaf(certs, d, name, cn, san):
    """A server+client certificate of the test CA with the given SANs."""
    key, csr, crt = (os.path.join(d, name + s) for s in ("-key.pem", ".csr", ".pem"))
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", key)
    run("openssl", "req", "-new", "-key", key, "-subj", "/O=metad test/CN=" + cn, "-out", csr)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n" % san)
    run("openssl", "x509", "-req", "-in", csr, "-CA", certs["ca"], "-CAkey", certs["ca-key"],
        "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "30",
        "-extfile", ext, "-out", crt)
    return crt, key


@pytest.mark.parametrize("name,allowed", [("localhost", True), ("elsewhere.invalid", False)])
def test_peer_client_dns_san_by_reverse_lookup(cluster_factory, certs, tmp_path, name, allowed):
    """As above, but m1's certificate also names a host: etcd then looks the
    caller's address up (127.0.0.1 is localhost here). The lookup runs off
    the peer thread, whose verdict comes back to accept or refuse."""
    crt, key = leaf(certs, str(tmp_path), "m1", "m1", "IP:127.0.0.2,DNS:" + name)
    m0 = peer_tls_args(certs["server"], certs["server-key"], certs["ca"])
    m1 = peer_tls_args(crt, key, certs["ca"])
    c = cluster_factory(size=2, start=False, peer_scheme="https", extra_args=FAST,
                        member_args=[m0, m1], peer_hosts=["127.0.0.1", "127.0.0.2"])
    spawn(c)
    if allowed:
        assert works(c)
    else:
        assert never_leads(c)
        why = 'tls: "127.0.0.1" does not match any of DNSNames ["%s"]' % name
        wait_for(lambda: json.dumps(why)[1:-1] in c.members[0].log_text(),
                 what="m0 to log the refusal")  # the log is JSON: quotes escaped


def test_peer_auto_tls(cluster_factory):
    c = cluster_factory(size=3, peer_scheme="https", extra_args=["--peer-auto-tls"])
    members = c.members[0].ctl_ok("member", "list").splitlines()
    assert len(members) == 3 and all(", started, " in l and "https://" in l for l in members)
    assert works(c)
    for m in c.members:
        cert = os.path.join(m.data_dir, "fixtures", "peer", "cert.pem")
        assert os.path.exists(cert)
        # The peer port speaks TLS with that certificate.
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % m.peer_port],
                           input=b"", capture_output=True, timeout=30)
        served = subprocess.run(["openssl", "x509", "-noout", "-fingerprint"],
                                input=p.stdout, capture_output=True, timeout=30).stdout
        mine = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-in", cert],
                              capture_output=True, timeout=30).stdout
        assert served and served == mine


def test_peer_auto_tls_ignored_with_certs(cluster_factory, certs):
    args = peer_tls_args(certs["server"], certs["server-key"], certs["ca"])
    c = cluster_factory(size=1, peer_scheme="https", extra_args=args + ["--peer-auto-tls"])
    assert "ignoring peer auto TLS since certs given" in c.members[0].log_text()
    assert not os.path.exists(os.path.join(c.members[0].data_dir, "fixtures", "peer"))


@pytest.fixture
def revoked_peer(certs, tmp_path):
    """A peer certificate of the test CA (SAN 127.0.0.1), and a CRL revoking it."""
    d = str(tmp_path)
    crt, key = leaf(certs, d, "revoked", "revoked peer", "IP:127.0.0.1,DNS:localhost")
    crl = harness.revoke(certs, d, crt)
    return crt, key, crl


@pytest.mark.parametrize("with_crl", [True, False])
def test_peer_crl_file(cluster_factory, certs, revoked_peer, with_crl):
    crt, key, crl = revoked_peer
    good = peer_tls_args(certs["server"], certs["server-key"], certs["ca"])
    bad = peer_tls_args(crt, key, certs["ca"])
    crl_args = ["--peer-crl-file", crl] if with_crl else []
    c = cluster_factory(size=2, start=False, peer_scheme="https", extra_args=FAST,
                        member_args=[good + crl_args, bad + crl_args])
    spawn(c)
    if with_crl:
        assert never_leads(c)
    else:  # the control: the same certificates without the CRL
        assert works(c)


def start_refused(tmp_path, *args):
    """metad's stderr when it refuses to start with these flags."""
    url = "http://127.0.0.1:%d" % harness.free_port()
    argv = [harness.METAD_BIN, "--data-dir", str(tmp_path / "d"), "--listen-client-urls", url,
            "--advertise-client-urls", url, "--listen-peer-urls",
            "http://127.0.0.1:%d" % harness.free_port()] + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert p.returncode != 0, "%s was not refused" % (args,)
    return p.stderr


def test_peer_crl_file_unreadable_stops_start(tmp_path):
    err = start_refused(tmp_path, "--peer-crl-file", str(tmp_path / "missing.pem"))
    assert "--peer-crl-file" in err and "No such file" in err
    assert not os.path.exists(tmp_path / "d"), "refused after creating the data dir"


@pytest.mark.parametrize("flag,good,bad", [
    ("--peer-cert-allowed-cn", "metad server", "someone else"),
    ("--peer-cert-allowed-hostname", "localhost", "example.com"),
])
def test_peer_cert_allowed(cluster_factory, certs, flag, good, bad):
    tls = peer_tls_args(certs["server"], certs["server-key"], certs["ca"])
    c = cluster_factory(size=2, start=False, peer_scheme="https", extra_args=FAST + tls,
                        member_args=[[flag, good], [flag, good]])
    spawn(c)
    assert works(c)
    # One member asking for another name refuses the other, both ways.
    d = cluster_factory(size=2, start=False, peer_scheme="https", extra_args=FAST + tls,
                        member_args=[[flag, bad], [flag, good]])
    spawn(d)
    assert never_leads(d)
    # Logged when the refused member dials: under load that can come after
    # the window.
    wait_for(lambda: "client certificate authentication failed" in d.members[0].log_text(),
             what="m0 to log the refusal")


def test_peer_cert_allowed_cn_and_hostname_exclusive(tmp_path):
    err = start_refused(tmp_path, "--peer-cert-allowed-cn", "a",
                        "--peer-cert-allowed-hostname", "b")
    fatal = [json.loads(l) for l in err.splitlines() if '"fatal"' in l]
    assert fatal and fatal[-1]["error"] == (
        'AllowedCN and AllowedHostname are mutually exclusive (cn="a", hostname="b")')


@pytest.mark.parametrize("skip", [False, True])
def test_peer_client_san_checked(cluster_factory, certs, tmp_path, skip):
    """m1's peer URL is on 127.0.0.2 and its certificate is valid for that
    address only; it dials m0 from 127.0.0.1, which etcd refuses unless told
    to skip the check."""
    crt, key = leaf(certs, str(tmp_path), "m1", "m1", "IP:127.0.0.2")
    m0 = peer_tls_args(certs["server"], certs["server-key"], certs["ca"])
    m1 = peer_tls_args(crt, key, certs["ca"])
    skip_args = ["--experimental-peer-skip-client-san-verification"] if skip else []
    c = cluster_factory(size=2, start=False, peer_scheme="https", extra_args=FAST,
                        member_args=[m0 + skip_args, m1],
                        peer_hosts=["127.0.0.1", "127.0.0.2"])
    spawn(c)
    if skip:
        assert works(c)
    else:
        assert never_leads(c)
        wait_for(lambda: ("x509: certificate is valid for 127.0.0.2, not 127.0.0.1"
                          in c.members[0].log_text()), what="m0 to log the refusal")

"""TLS on the client port with client-certificate authentication
(--cert-file --key-file --trusted-ca-file --client-cert-auth, https URLs)."""

import grpc
import pytest
import etcd3
from etcd3 import etcdrpc

from harness import RPC_TIMEOUT

FAST = ["--dial-timeout", "2s", "--command-timeout", "3s"]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def stub_with(srv, root=None, key=None, cert=None, plaintext=False):
    if plaintext:
        ch = grpc.insecure_channel(srv.target)
    else:
        creds = grpc.ssl_channel_credentials(read(root), key and read(key), cert and read(cert))
        ch = grpc.secure_channel(srv.target, creds)
    srv._channels.append(ch)
    return etcdrpc.KVStub(ch)


def refused(stub):
    """A Put through this stub must not reach the server."""
    with pytest.raises(grpc.RpcError) as exc:
        stub.Put(etcdrpc.PutRequest(key=b"intruder", value=b"x"), timeout=3)
    assert exc.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                grpc.StatusCode.UNKNOWN), exc.value


def assert_no_intruder(srv):
    r = srv.kv().Range(etcdrpc.RangeRequest(key=b"intruder"), timeout=RPC_TIMEOUT)
    assert r.count == 0


def test_etcdctl_with_client_cert(tls_server):
    assert tls_server.client_url.startswith("https://127.0.0.1:")
    assert tls_server.ctl_ok("put", "secure", "yes") == "OK\n"
    assert tls_server.ctl_ok("get", "secure", "--print-value-only") == "yes\n"
    # The server certificate also names localhost.
    ep = "https://localhost:%d" % tls_server.client_port
    assert tls_server.ctl_ok("get", "secure", "--print-value-only", endpoint=ep) == "yes\n"
    (st,) = tls_server.ctl_json("endpoint", "status")
    assert st["Status"]["leader"] == st["Status"]["header"]["member_id"]
    rc, out, err = tls_server.ctl("endpoint", "health")
    assert rc == 0 and "is healthy" in out + err


def test_python_etcd3_with_client_cert(tls_server):
    c = tls_server.client()
    assert c.uses_secure_channel
    rev = c.put("py", "tls").header.revision
    value, meta = c.get("py")
    assert value == b"tls" and meta.mod_revision == rev


def test_etcdctl_without_client_cert_is_refused(tls_server, certs):
    rc, out, err = tls_server.ctl("put", "intruder", "x", tls=["--cacert", certs["ca"]] + FAST)
    assert rc != 0 and out == ""
    assert_no_intruder(tls_server)


def test_etcdctl_with_cert_from_other_ca_is_refused(tls_server, certs):
    args = ["--cacert", certs["ca"], "--cert", certs["other-client"],
            "--key", certs["other-client-key"]] + FAST
    rc, out, err = tls_server.ctl("put", "intruder", "x", tls=args)
    assert rc != 0 and out == ""
    assert_no_intruder(tls_server)


def test_etcdctl_plaintext_on_tls_port_is_refused(tls_server):
    ep = "http://127.0.0.1:%d" % tls_server.client_port
    rc, out, err = tls_server.ctl("put", "intruder", "x", tls=FAST, endpoint=ep)
    assert rc != 0 and out == ""
    assert_no_intruder(tls_server)


def test_grpc_clients_without_valid_cert_are_refused(tls_server, certs):
    refused(stub_with(tls_server, root=certs["ca"]))                       # no client cert
    refused(stub_with(tls_server, root=certs["ca"], key=certs["other-client-key"],
                      cert=certs["other-client"]))                          # other CA
    refused(stub_with(tls_server, plaintext=True))                          # no TLS at all
    # A client that does not trust the server's CA refuses the server.
    refused(stub_with(tls_server, root=certs["other-ca"], key=certs["client-key"],
                      cert=certs["client"]))
    # python3-etcd3 with a CA but no client certificate.
    c = etcd3.client("127.0.0.1", tls_server.client_port, ca_cert=certs["ca"], timeout=3)
    tls_server._clients.append(c)
    with pytest.raises(Exception):
        c.put("intruder", "x")
    assert_no_intruder(tls_server)
    # The properly authenticated client still works afterwards.
    ok = stub_with(tls_server, root=certs["ca"], key=certs["client-key"], cert=certs["client"])
    assert ok.Put(etcdrpc.PutRequest(key=b"ok", value=b"1"), timeout=RPC_TIMEOUT).header.revision


def test_tls_server_restart_keeps_data(tls_server):
    tls_server.ctl_ok("put", "persist", "over-tls")
    tls_server.restart()
    assert tls_server.ctl_ok("get", "persist", "--print-value-only") == "over-tls\n"


def test_kv_tour_over_tls(tls_server):
    """The KV service and etcdctl's maintenance commands behave the same over TLS."""
    kv = tls_server.kv()
    revs = [kv.Put(etcdrpc.PutRequest(key=b"t/%d" % i, value=b"%d" % i), timeout=RPC_TIMEOUT)
            .header.revision for i in range(5)]
    assert revs == list(range(revs[0], revs[0] + 5))
    r = kv.Range(etcdrpc.RangeRequest(key=b"t/", range_end=b"t0", limit=2,
                                      sort_order=etcdrpc.RangeRequest.DESCEND), timeout=10)
    assert [x.key for x in r.kvs] == [b"t/4", b"t/3"] and r.more and r.count == 5
    old = kv.Range(etcdrpc.RangeRequest(key=b"t/", range_end=b"t0", revision=revs[1]),
                   timeout=10)
    assert old.count == 2 and old.header.revision == revs[4]
    t = kv.Txn(etcdrpc.TxnRequest(
        compare=[etcdrpc.Compare(key=b"t/0", target=etcdrpc.Compare.VALUE,
                                 result=etcdrpc.Compare.EQUAL, value=b"0")],
        success=[etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(
            key=b"t/", range_end=b"t0", prev_kv=True))]), timeout=10)
    assert t.succeeded and t.responses[0].response_delete_range.deleted == 5
    assert t.header.revision == revs[4] + 1
    kv.Compact(etcdrpc.CompactionRequest(revision=revs[2], physical=True), timeout=10)
    with pytest.raises(grpc.RpcError) as exc:
        kv.Range(etcdrpc.RangeRequest(key=b"t/0", revision=revs[1]), timeout=10)
    assert exc.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert exc.value.details() == "etcdserver: mvcc: required revision has been compacted"
    (m,) = tls_server.ctl_json("member", "list")["members"]
    assert m["clientURLs"] == [tls_server.client_url] and m["name"] == "n1"
    assert tls_server.ctl_ok("txn", input='version("t/0") = "0"\n\nput t/new x\n\n\n') == \
        "SUCCESS\n\nOK\n"
    assert tls_server.ctl_ok("del", "--prefix", "t/") == "1\n"

"""--config-file in etcd's YAML format and ETCD_* environment variables
(issue 14): the server takes its settings from them exactly as from flags,
and with a config file the command line is ignored, as etcd does. Passes
against the reference etcd (METAD_BIN=/usr/bin/etcd) too."""

import os

import grpc
import pytest
from etcd3 import etcdrpc

from harness import METAD_BIN, RPC_TIMEOUT


def three_put_txn():
    ops = [etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b"k%d" % i, value=b"v"))
           for i in range(3)]
    return etcdrpc.TxnRequest(success=ops)


def config_server(server_factory, text_of, certs=None):
    """A server started with only --config-file; text_of(srv) gives the YAML."""
    srv = server_factory(certs=certs, start=False, name="cfg")
    os.makedirs(srv.workdir, exist_ok=True)
    srv.pick_ports()
    path = os.path.join(srv.workdir, "etcd.conf.yml")
    with open(path, "w") as f:
        f.write(text_of(srv))
    # A flag that the config file makes the server ignore.
    srv.argv = lambda: [METAD_BIN, "--config-file", path, "--max-txn-ops", "1000"]
    srv.start()
    return srv


def base_yaml(srv):
    return """# etcd's sample layout
name: 'cfg'
data-dir: %s
listen-client-urls: %s
advertise-client-urls: %s
listen-peer-urls: %s
initial-advertise-peer-urls: %s
initial-cluster: cfg=%s
initial-cluster-token: 'yaml-cluster'
initial-cluster-state: 'new'
max-txn-ops: 2
quota-backend-bytes: 0
heartbeat-interval: 100
election-timeout: 1000
enable-v2: false
log-outputs: [stderr]
""" % (srv.data_dir, srv.client_url, srv.client_url, srv.peer_url, srv.peer_url, srv.peer_url)


def test_config_file_sets_flags(server_factory):
    srv = config_server(server_factory, base_yaml)
    (m,) = srv.ctl_json("member", "list")["members"]
    assert m["name"] == "cfg"
    with pytest.raises(grpc.RpcError) as e:
        srv.kv().Txn(three_put_txn(), timeout=RPC_TIMEOUT)
    assert e.value.details() == "etcdserver: too many operations in txn request"


def test_config_file_transport_security(server_factory, certs):
    def text(srv):
        return base_yaml(srv) + """client-transport-security:
  cert-file: %s
  key-file: %s
  trusted-ca-file: %s
  client-cert-auth: true
""" % (certs["server"], certs["server-key"], certs["ca"])
    srv = config_server(server_factory, text, certs=certs)
    srv.ctl_ok("put", "tls", "yes")
    assert srv.ctl_ok("get", "tls", "--print-value-only").strip() == "yes"
    # client-cert-auth came from the file: no certificate, no service.
    rc, _, _ = srv.ctl("get", "tls", tls=["--cacert", certs["ca"]])
    assert rc != 0


def test_environment_variables(server_factory):
    srv = server_factory(start=False)
    srv.env = dict(os.environ, ETCD_MAX_TXN_OPS="2")
    srv.start()
    with pytest.raises(grpc.RpcError) as e:
        srv.kv().Txn(three_put_txn(), timeout=RPC_TIMEOUT)
    assert e.value.details() == "etcdserver: too many operations in txn request"

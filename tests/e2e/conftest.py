"""End-to-end tests: real server processes driven by etcdctl 3.4 and python3-etcd3.

How to run
----------
Against metad (normal case): build, then run ctest, which registers every
tests/e2e/test_*.py as the ctest test ``e2e_<name>`` with METAD_BIN and
METAD_SOURCE set::

    make test                      # or: cd build && ctest -L e2e --output-on-failure

One file by hand against a build::

    METAD_BIN=build/metad /usr/bin/python3 -m pytest -q tests/e2e/test_txn.py

Against the reference etcd 3.4 (Debian's etcd-server), to check that the tests
describe etcd's behaviour::

    METAD_BIN=/usr/bin/etcd /usr/bin/python3 -m pytest -q tests/e2e

Every test starts its own server in a fresh temp dir on free loopback ports
(never 2379/2380), so files and tests can run in parallel. The server is
started with etcd's flags (``--name --data-dir --listen-client-urls
--advertise-client-urls --listen-peer-urls --initial-advertise-peer-urls
--initial-cluster``, plus ``--cert-file --key-file --trusted-ca-file
--client-cert-auth`` with https URLs for TLS, and ``--max-request-bytes`` /
``--max-txn-ops`` where a test needs them). Readiness = a linearizable Range
answers (polled against a 20 s deadline). The server's stdout+stderr go to
``server.log`` in the temp dir and are attached to the report of a failing
test. Set METAD_E2E_KEEP=1 to keep the temp dirs (they are always kept when a
test fails).

Teardown stops every server with SIGTERM (SIGKILL after 20 s) and fails the
test if a server crashed during it, or if any SIGTERM during the test did not
end in a clean exit: metad must exit 0 (so sanitizer reports at exit fail the
test); etcd re-raises SIGTERM and exits with -15, which is accepted for it.

Where etcd 3.4 differs from the etcd 3.5 behaviour metad targets
(../shared/ETCD-COMPAT.md), the single assertion is guarded by
``harness.IS_REFERENCE_ETCD_34``.
"""

import os
import shutil
import signal

import pytest

import harness
from watchstream import WatchStream

_KEEP = os.environ.get("METAD_E2E_KEEP") == "1"


def pytest_report_header(config):
    return "server binary: %s (reference etcd 3.4: %s)" % (
        harness.METAD_BIN, harness.IS_REFERENCE_ETCD_34)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        servers = list(getattr(item, "_metad_servers", []))
        for v in getattr(item, "funcargs", {}).values():
            if isinstance(v, harness.Server) and v not in servers:
                servers.append(v)
        for srv in servers:
            group = getattr(srv, "_group", None) or getattr(item, "_metad_group", None)
            if group is not None:
                group.failed = True
            rep.sections.append(("server log %s (%s)" % (srv.name, srv.log_path),
                                 srv.log_tail()))


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return harness.make_certs(str(tmp_path_factory.mktemp("certs")))


class _Servers:
    """Servers started for one test (or one module), stopped in teardown."""

    def __init__(self):
        self.servers = []
        self.failed = False

    def factory(self, certs=None, extra_args=(), start=True, name="n1"):
        srv = harness.Server(harness.new_workdir(), name=name, certs=certs,
                             extra_args=extra_args)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def teardown(self):
        """Stop every server; fail if one crashed during the test or did not shut
        down cleanly on SIGTERM (metad must exit 0; etcd re-raises SIGTERM)."""
        problems = []
        for srv in self.servers:
            if srv.died_unexpectedly():
                problems.append("%s exited on its own with status %s during the test"
                                % (srv.name, srv.proc.returncode))
                continue
            try:
                srv.stop()
            finally:
                srv.kill()
            clean = (0, -signal.SIGTERM) if harness.IS_REFERENCE_ETCD else (0,)
            for i, (rc, graceful) in enumerate(srv.stop_results):
                if not graceful:
                    problems.append("%s ignored SIGTERM #%d for %.0fs (killed)"
                                    % (srv.name, i + 1, harness.STOP_DEADLINE))
                elif rc not in clean:
                    problems.append("%s exited with status %s on SIGTERM #%d"
                                    % (srv.name, rc, i + 1))
        if problems:
            self.failed = True
        if not _KEEP and not self.failed:
            for srv in self.servers:
                shutil.rmtree(srv.workdir, ignore_errors=True)
        if problems:
            raise AssertionError("; ".join(problems) + "\n" + "\n".join(
                "--- %s:\n%s" % (srv.log_path, srv.log_tail(8000)) for srv in self.servers))


@pytest.fixture
def server_factory(request):
    """factory(certs=None, extra_args=(), start=True) -> harness.Server.

    Every server is stopped in teardown (SIGTERM, then SIGKILL after a deadline)
    and its temp dir removed (kept if the test failed)."""
    group = _Servers()
    request.node._metad_servers = group.servers
    request.node._metad_group = group
    yield group.factory
    group.teardown()


@pytest.fixture(scope="module")
def module_server(request):
    """One plain server shared by the tests of a module that only read data the
    module fixture wrote (or use keys no other test touches)."""
    group = _Servers()
    srv = group.factory()
    srv._group = group
    yield srv
    group.teardown()


@pytest.fixture
def cluster_factory(request):
    """factory(size=3, extra_args=()) -> harness.Cluster, started; every member
    is stopped in teardown like any other server."""
    group = _Servers()
    request.node._metad_servers = group.servers
    request.node._metad_group = group

    def make(size=3, extra_args=(), start=True, **kw):
        c = harness.Cluster(harness.new_workdir(), size=size, extra_args=extra_args, **kw)
        group.servers.extend(c.members)
        if start:
            c.start()
        return c
    yield make
    group.teardown()


@pytest.fixture
def server(server_factory):
    """A plain-TCP server, fresh for this test."""
    return server_factory()


@pytest.fixture
def tls_server(server_factory, certs):
    """A server on https URLs requiring client certificates from certs['ca']."""
    return server_factory(certs=certs)


@pytest.fixture
def etcd(server):
    """A python3-etcd3 client connected to `server`."""
    return server.client()


@pytest.fixture
def kv(server):
    """The raw etcdserverpb.KV stub connected to `server`."""
    return server.kv()


@pytest.fixture
def ws(server):
    """A raw Watch stream (watchstream.WatchStream) on `server`."""
    s = WatchStream(server.channel())
    yield s
    s.close()

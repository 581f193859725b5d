"""The peer-link proxy partitions what it is told to and nothing else: two
stand-in "members" (child processes) dial one proxy; blocking a -> dst cuts
a's open connection and refuses its new ones while b's keep working, healing
lets a back in, and a dialler that is no member is refused. Without this, a
proxy that silently forwarded everything would make every fault run pass
with its partitions never happening.

Run: /usr/bin/python3 -m pytest -q tests/faults/test_proxy.py
"""

import os
import socket
import subprocess
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import proxy  # noqa: E402

# A stand-in member: one connection, a ping now and one per line on stdin.
CHILD = r"""
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
except OSError:     # a refusal can end the connection before connect returns
    s = None
def ping():
    try:
        s.sendall(b"ping")
        return "ok" if s.recv(4) == b"ping" else "closed"
    except (OSError, AttributeError):
        return "closed"
print(ping(), flush=True)
for _ in sys.stdin:
    print(ping(), flush=True)
"""


class Echo:
    """The real peer port behind the proxy: echoes whatever arrives."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        try:
            while True:
                d = c.recv(4096)
                if not d:
                    return
                c.sendall(d)
        except OSError:
            pass


class Child:
    def __init__(self, port):
        self.p = subprocess.Popen([sys.executable, "-c", CHILD, str(port)], text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def first(self):
        return self.p.stdout.readline().strip()

    def again(self):
        self.p.stdin.write("\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def close(self):
        self.p.kill()
        self.p.wait(timeout=10)


@pytest.fixture
def setup():
    echo = Echo()
    links = proxy.Links()
    pids = {}
    p = proxy.Proxy(links, "dst", echo.port, lambda: dict(pids))
    children = []

    def child(name):
        c = Child(p.port)
        pids[name] = c.p.pid
        children.append(c)
        return c
    yield links, p, child
    for c in children:
        c.close()
    p.close()
    echo.s.close()


def test_block_cuts_one_source_and_heal_restores(setup):
    links, p, child = setup
    a, b = child("a"), child("b")
    # pids holds each child's pid right after Popen, long before the child's
    # interpreter has started and dialled, so the proxy can identify it.
    assert a.first() == "ok" and b.first() == "ok"
    links.block("a", "dst")
    assert a.again() == "closed"            # the open connection is cut
    assert b.again() == "ok"                # the other member's link is untouched
    assert child("a").first() == "closed"   # a new one from a is refused
    assert child("b").first() == "ok"
    assert p.refused == 1
    links.heal_all()
    assert child("a").first() == "ok"


def test_dialler_that_is_no_member_is_refused(setup):
    links, p, child = setup
    try:
        with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
            s.sendall(b"ping")
            got = s.recv(4)
    except OSError:     # reset before or after connect returned
        got = b""
    assert got == b"" and p.unidentified == 1

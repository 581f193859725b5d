"""TCP proxies on the peer links of a loopback cluster, so the fault test can
partition members without network namespaces or root-only firewall rules.

Every member advertises its proxy's port as its peer URL; the proxy forwards
to the member's real --listen-peer-urls. All members share one
--initial-cluster (member and cluster IDs are derived from it), so there is
one proxy per destination member, shared by the other members' connections.
To cut only the link A -> B, the proxy in front of B must know which member
dialled it: every connection on loopback comes from 127.0.0.1, so the proxy
looks the connecting socket up in /proc/net/tcp (its inode) and finds the
member process holding that inode in /proc/<pid>/fd. metad dials one stream
per peer and sends its own messages on it, so blocking A -> B in B's proxy and
B -> A in A's proxy partitions the pair both ways; blocking one of them alone
is a one-way partition.
"""

import os
import socket
import threading

_BUF = 65536


def _hexport(port):
    return "%04X" % port


def _socket_inode(local_port, remote_port):
    """Inode of the loopback socket local_port -> remote_port, or None."""
    want_l, want_r = ":" + _hexport(local_port), ":" + _hexport(remote_port)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(want_l) and parts[2].endswith(want_r):
                        return parts[9]
        except OSError:
            continue
    return None


def _owner(inode, pids):
    """Which of pids ({name: pid}) holds socket inode; None if none does."""
    target = "socket:[%s]" % inode
    for name, pid in pids.items():
        if pid is None:
            continue
        fddir = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(fddir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(fddir, fd)) == target:
                    return name
            except OSError:
                continue
    return None


class Links:
    """The set of blocked directed links (src, dst), shared by all proxies."""

    def __init__(self):
        self.mu = threading.Lock()
        self.blocked = set()
        self.proxies = []

    def is_blocked(self, src, dst):
        with self.mu:
            return (src, dst) in self.blocked

    def block(self, src, dst):
        with self.mu:
            self.blocked.add((src, dst))
        # Existing connections on the link end now, as a cable pulled out would
        # make them end eventually (metad re-dials and is refused).
        for p in self.proxies:
            if p.dst == dst:
                p.close_from(src)

    def heal_all(self):
        with self.mu:
            self.blocked.clear()


class Proxy:
    """Listens on a free loopback port, forwards to dst's real peer port."""

    def __init__(self, links, dst, upstream_port, pids):
        self.links = links
        self.dst = dst                  # member name behind this proxy
        self.upstream_port = upstream_port
        self.pids = pids                # callable -> {member name: pid or None}
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.mu = threading.Lock()
        self.conns = []                 # [src name, client sock, upstream sock]
        self.closed = False
        self.accepted = 0
        self.refused = 0
        self.unidentified = 0
        links.proxies.append(self)
        self._t = threading.Thread(target=self._accept_loop, daemon=True,
                                   name="proxy-%s" % dst)
        self._t.start()

    def _accept_loop(self):
        while True:
            try:
                c, addr = self.lsock.accept()
            except OSError:
                return              # listening socket closed
            if self.closed:
                _reset(c)
                return
            src = _owner(_socket_inode(addr[1], self.port) or "-", self.pids())
            if src is None:
                # A dialler that is not a member (or one that already closed):
                # refuse rather than guess which link it belongs to.
                self.unidentified += 1
                _reset(c)
                continue
            if self.links.is_blocked(src, self.dst):
                self.refused += 1
                _reset(c)
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
                u.settimeout(None)
            except OSError:
                _reset(c)               # member down: as if it refused
                continue
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            entry = [src, c, u]
            with self.mu:
                self.conns.append(entry)
            self.accepted += 1
            # A partition may have started between the check and the append.
            if self.links.is_blocked(src, self.dst):
                self._drop(entry)
                continue
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b, entry), daemon=True,
                                 name="pump-%s>%s" % (src, self.dst)).start()

    def _pump(self, a, b, entry):
        try:
            while True:
                data = a.recv(_BUF)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        self._drop(entry)

    def _drop(self, entry):
        with self.mu:
            if entry in self.conns:
                self.conns.remove(entry)
        for s in entry[1:]:
            _reset(s)

    def close_from(self, src):
        with self.mu:
            doomed = [e for e in self.conns if e[0] == src]
        for e in doomed:
            self._drop(e)

    def close(self):
        self.closed = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        with self.mu:
            doomed = list(self.conns)
        for e in doomed:
            self._drop(e)


def _reset(s):
    """Close with an RST, so the peer sees a refused/broken link at once
    instead of a graceful end of stream."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass

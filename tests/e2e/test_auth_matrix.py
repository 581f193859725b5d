"""The authorization matrix: every RPC of every service, called by six
identities, with the outcome of each written in the table below.

Identities: root; ro (READ on prefix /p/); rw (READWRITE on /p/); norole (a
user without roles); none (no token); forged (a token the server never
issued). An expired token answers as a forged one (test_auth.py checks
expiry). Outcomes: OK, or the refusal's short name (see REFUSALS); "U:"
marks a refusal sent as gRPC Unknown, as etcd's Lock and Election services
send every error. The rows include the requests issue 12 names as bypasses
to close: a nested Txn writing outside the grant, prev_kv on a key that may
be written but not read, LeaseRevoke and LeaseTimeToLive of a lease holding
a key outside the grant, a watch with range_end "\\0" from a prefix user,
Lock/Campaign outside the grant, and Lock/Campaign/Proclaim inside it whose
put joins a lease holding a key outside it (checked at apply, as the
caller). Alarm: listing needs a user, raising or clearing one the root role.

Where etcd 3.4 (the installed reference) answers otherwise, ETCD34 holds its
answer, so the same table runs against it."""

import queue
import threading

import grpc
import pytest
from etcd3 import etcdrpc

import concurrencypb as pb
from harness import IS_REFERENCE_ETCD_34

IDS = ["root", "ro", "rw", "norole", "none", "forged"]
PASSWORDS = {"root": "rootpw", "ro": "ropw", "rw": "rwpw", "norole": "nopw"}
REFUSALS = {
    (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied"): "DENIED",
    (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: user name is empty"): "EMPTY",
    (grpc.StatusCode.UNAUTHENTICATED, "etcdserver: invalid auth token"): "BADTOK",
    (grpc.StatusCode.UNKNOWN, "etcdserver: permission denied"): "U:DENIED",
    (grpc.StatusCode.UNKNOWN, "etcdserver: user name is empty"): "U:EMPTY",
    (grpc.StatusCode.UNKNOWN, "etcdserver: invalid auth token"): "U:BADTOK",
    (grpc.StatusCode.UNKNOWN, "auth: permission denied"): "U:auth-DENIED",
    (grpc.StatusCode.UNKNOWN, "auth: user name is empty"): "U:auth-EMPTY",
    (grpc.StatusCode.UNKNOWN, "auth: invalid auth token"): "U:auth-BADTOK",
    (grpc.StatusCode.UNKNOWN, "election: no leader"): "U:no-leader",
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"): "HANG",
    (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: bad leader transferee"): "bad-transferee",
    (grpc.StatusCode.NOT_FOUND, "etcdserver: member not found"): "member-not-found",
    (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"):
        "COMPACTED",
}

# A refused watch is created and cancelled at once; its reason is the gRPC
# error's full text (etcd 3.4.23+/3.5: the refusal's own, so clients can tell
# a token to renew from a range they may not read).
CANCEL_REASONS = {
    "rpc error: code = PermissionDenied desc = etcdserver: permission denied": "DENIED",
    "rpc error: code = InvalidArgument desc = etcdserver: user name is empty": "EMPTY",
    "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token": "BADTOK",
}

ALL_OK = {i: "OK" for i in IDS}
ROOT_ONLY = {"root": "OK", "ro": "DENIED", "rw": "DENIED", "norole": "DENIED",
             "none": "EMPTY", "forged": "BADTOK"}
READERS = {"root": "OK", "ro": "OK", "rw": "OK", "norole": "DENIED", "none": "EMPTY",
           "forged": "BADTOK"}
WRITERS = {"root": "OK", "ro": "DENIED", "rw": "OK", "norole": "DENIED", "none": "EMPTY",
           "forged": "BADTOK"}


def u(row):
    """The same row as Lock/Election answer it (every refusal as Unknown)."""
    return {k: (v if v == "OK" or v.startswith("U:") else "U:" + v) for k, v in row.items()}


def put(key, prev_kv=False, lease=0):
    return etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=key, value=b"v",
                                                            prev_kv=prev_kv, lease=lease))


def rng(key, end=b""):
    return etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=key, range_end=end))


class Ctx:
    """Stubs and fixtures shared by the rows; md is the identity's metadata."""

    def __init__(self, server):
        ch = server.channel()
        self.server = server
        self.kv = etcdrpc.KVStub(ch)
        self.lease = etcdrpc.LeaseStub(ch)
        self.maint = etcdrpc.MaintenanceStub(ch)
        self.cluster = etcdrpc.ClusterStub(ch)
        self.auth = etcdrpc.AuthStub(ch)
        self.lock = pb.LockStub(ch)
        self.elect = pb.ElectionStub(ch)
        self.ch = ch
        self.root = None

    def root_lease(self, key):
        """A fresh lease of root's holding key."""
        lid = self.lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=600), timeout=10,
                                    metadata=self.root).ID
        self.kv.Put(etcdrpc.PutRequest(key=key, value=b"l", lease=lid), timeout=10,
                    metadata=self.root)
        return lid


def watch_outcome(ctx, md, key, end=b""):
    reqs, resps = queue.Queue(), queue.Queue()

    def gen():
        yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(key=key,
                                                                             range_end=end))
        reqs.get()

    call = etcdrpc.WatchStub(ctx.ch).Watch(gen(), timeout=30, metadata=md)

    def read():
        try:
            for r in call:
                resps.put(r)
                return
        except grpc.RpcError as e:
            resps.put(e)

    threading.Thread(target=read, daemon=True).start()
    try:
        r = resps.get(timeout=10)
    finally:
        reqs.put(None)
        call.cancel()
    if isinstance(r, grpc.RpcError):
        return REFUSALS.get((r.code(), r.details()), str((r.code(), r.details())))
    if r.canceled:
        return "CANCELED:" + CANCEL_REASONS.get(r.cancel_reason, r.cancel_reason)
    return "OK" if r.created else "?"


def lock_and_unlock(ctx, md, name):
    lid = ctx.lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=600), timeout=10,
                               metadata=ctx.root).ID
    held = ctx.lock.Lock(pb.LockRequest(name=name, lease=lid), timeout=3, metadata=md)
    ctx.lock.Unlock(pb.UnlockRequest(key=held.key), timeout=10, metadata=ctx.root)


def campaign_and_resign(ctx, md, name):
    lid = ctx.lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=600), timeout=10,
                               metadata=ctx.root).ID
    c = ctx.elect.Campaign(pb.CampaignRequest(name=name, lease=lid, value=b"v"), timeout=3,
                           metadata=md)
    ctx.elect.Resign(pb.ResignRequest(leader=c.leader), timeout=10, metadata=ctx.root)


def lock_with_lease(ctx, md, name, lid):
    """Lock under the grant, but joining lease lid (it may hold other keys)."""
    held = ctx.lock.Lock(pb.LockRequest(name=name, lease=lid), timeout=3, metadata=md)
    ctx.lock.Unlock(pb.UnlockRequest(key=held.key), timeout=10, metadata=ctx.root)


def campaign_with_lease(ctx, md, name, lid):
    c = ctx.elect.Campaign(pb.CampaignRequest(name=name, lease=lid, value=b"v"), timeout=3,
                           metadata=md)
    ctx.elect.Resign(pb.ResignRequest(leader=c.leader), timeout=10, metadata=ctx.root)


def proclaim_with_lease(ctx, md, name, lid):
    """root leads name; md proclaims on its key, moving it to lease lid."""
    own = ctx.lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=600), timeout=10,
                               metadata=ctx.root).ID
    c = ctx.elect.Campaign(pb.CampaignRequest(name=name, lease=own, value=b"v"), timeout=10,
                           metadata=ctx.root)
    try:
        leader = pb.LeaderKey(name=c.leader.name, key=c.leader.key, rev=c.leader.rev, lease=lid)
        ctx.elect.Proclaim(pb.ProclaimRequest(leader=leader, value=b"w"), timeout=10, metadata=md)
    finally:
        ctx.elect.Resign(pb.ResignRequest(leader=c.leader), timeout=10, metadata=ctx.root)


def alarm(ctx, md, action, kind=etcdrpc.NOSPACE):
    member = ctx.maint.Status(etcdrpc.StatusRequest(), timeout=10,
                              metadata=ctx.root).header.member_id
    ctx.maint.Alarm(etcdrpc.AlarmRequest(action=action, memberID=member, alarm=kind),
                    timeout=10, metadata=md)


def alarm_activate(ctx, md):
    """Raise NOSPACE; when that works, root takes it back at once (NOSPACE
    refuses puts, and the rows after this one put)."""
    try:
        alarm(ctx, md, etcdrpc.AlarmRequest.ACTIVATE)
    finally:
        alarm(ctx, ctx.root, etcdrpc.AlarmRequest.DEACTIVATE)


WATCH_READERS = {"root": "OK", "ro": "OK", "rw": "OK", "norole": "CANCELED:DENIED",
                 "none": "CANCELED:EMPTY", "forged": "CANCELED:BADTOK"}
WATCH_ROOT = dict(WATCH_READERS, ro="CANCELED:DENIED", rw="CANCELED:DENIED")

# (name, call(ctx, md) -> None or an outcome string, expected outcome per identity)
ROWS = [
    ("Range key in grant", lambda c, m: c.kv.Range(etcdrpc.RangeRequest(key=b"/p/a"),
                                                   timeout=10, metadata=m), READERS),
    ("Range prefix of grant", lambda c, m: c.kv.Range(
        etcdrpc.RangeRequest(key=b"/p/", range_end=b"/p0"), timeout=10, metadata=m), READERS),
    ("Range outside", lambda c, m: c.kv.Range(etcdrpc.RangeRequest(key=b"/q"), timeout=10,
                                              metadata=m), ROOT_ONLY),
    ("Range from /p/ to the end (\\0)", lambda c, m: c.kv.Range(
        etcdrpc.RangeRequest(key=b"/p/", range_end=b"\0"), timeout=10, metadata=m), ROOT_ONLY),
    ("Put in grant", lambda c, m: c.kv.Put(etcdrpc.PutRequest(key=b"/p/a", value=b"v"),
                                           timeout=10, metadata=m), WRITERS),
    ("Put outside", lambda c, m: c.kv.Put(etcdrpc.PutRequest(key=b"/q", value=b"v"),
                                          timeout=10, metadata=m), ROOT_ONLY),
    ("Put prev_kv in grant", lambda c, m: c.kv.Put(
        etcdrpc.PutRequest(key=b"/p/a", value=b"v", prev_kv=True), timeout=10, metadata=m),
     WRITERS),
    ("Put prev_kv on write-only key", lambda c, m: c.kv.Put(
        etcdrpc.PutRequest(key=b"/w/a", value=b"v", prev_kv=True), timeout=10, metadata=m),
     ROOT_ONLY),
    ("Delete in grant", lambda c, m: c.kv.DeleteRange(
        etcdrpc.DeleteRangeRequest(key=b"/p/gone"), timeout=10, metadata=m), WRITERS),
    ("Delete outside", lambda c, m: c.kv.DeleteRange(
        etcdrpc.DeleteRangeRequest(key=b"/q"), timeout=10, metadata=m), ROOT_ONLY),
    ("Delete prefix from /p/ to the end", lambda c, m: c.kv.DeleteRange(
        etcdrpc.DeleteRangeRequest(key=b"/p/zz", range_end=b"\0"), timeout=10, metadata=m),
     ROOT_ONLY),
    ("Txn read-only in grant", lambda c, m: c.kv.Txn(
        etcdrpc.TxnRequest(success=[rng(b"/p/", b"/p0")]), timeout=10, metadata=m), READERS),
    ("Txn write in grant", lambda c, m: c.kv.Txn(
        etcdrpc.TxnRequest(success=[put(b"/p/t")], failure=[rng(b"/p/a")]), timeout=10,
        metadata=m), WRITERS),
    ("Txn compare outside", lambda c, m: c.kv.Txn(etcdrpc.TxnRequest(
        compare=[etcdrpc.Compare(key=b"/q", target=etcdrpc.Compare.VERSION,
                                 result=etcdrpc.Compare.EQUAL, version=0)],
        success=[put(b"/p/t")]), timeout=10, metadata=m), ROOT_ONLY),
    ("Txn failure branch writes outside", lambda c, m: c.kv.Txn(
        etcdrpc.TxnRequest(success=[put(b"/p/t")], failure=[put(b"/q")]), timeout=10,
        metadata=m), ROOT_ONLY),
    ("Txn nested write outside", lambda c, m: c.kv.Txn(etcdrpc.TxnRequest(success=[
        etcdrpc.RequestOp(request_txn=etcdrpc.TxnRequest(success=[put(b"/q")]))]),
        timeout=10, metadata=m), ROOT_ONLY),
    ("Txn put prev_kv on write-only key", lambda c, m: c.kv.Txn(
        etcdrpc.TxnRequest(success=[put(b"/w/a", prev_kv=True)]), timeout=10, metadata=m),
     ROOT_ONLY),
    ("Compact", lambda c, m: c.kv.Compact(etcdrpc.CompactionRequest(revision=1), timeout=10,
                                          metadata=m), ROOT_ONLY),
    ("Watch prefix in grant", lambda c, m: watch_outcome(c, m, b"/p/", b"/p0"),
     WATCH_READERS),
    ("Watch outside", lambda c, m: watch_outcome(c, m, b"/q"), WATCH_ROOT),
    ("Watch from /p/ to the end (\\0)", lambda c, m: watch_outcome(c, m, b"/p/", b"\0"),
     WATCH_ROOT),
    ("LeaseGrant", lambda c, m: c.lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=60),
                                                   timeout=10, metadata=m),
     dict(ALL_OK, forged="BADTOK")),
    ("LeaseRevoke of a lease on /p/", lambda c, m: c.lease.LeaseRevoke(
        etcdrpc.LeaseRevokeRequest(ID=c.root_lease(b"/p/l")), timeout=10, metadata=m),
     WRITERS),
    ("LeaseRevoke of a lease on /q", lambda c, m: c.lease.LeaseRevoke(
        etcdrpc.LeaseRevokeRequest(ID=c.root_lease(b"/q/l")), timeout=10, metadata=m),
     ROOT_ONLY),
    ("LeaseTimeToLive keys of a lease on /p/", lambda c, m: c.lease.LeaseTimeToLive(
        etcdrpc.LeaseTimeToLiveRequest(ID=c.root_lease(b"/p/l"), keys=True), timeout=10,
        metadata=m), READERS),
    ("LeaseTimeToLive keys of a lease on /q", lambda c, m: c.lease.LeaseTimeToLive(
        etcdrpc.LeaseTimeToLiveRequest(ID=c.root_lease(b"/q/l"), keys=True), timeout=10,
        metadata=m), ROOT_ONLY),
    ("LeaseTimeToLive without keys", lambda c, m: c.lease.LeaseTimeToLive(
        etcdrpc.LeaseTimeToLiveRequest(ID=c.root_lease(b"/q/l")), timeout=10, metadata=m),
     ALL_OK),
    ("Put joining a lease that holds /q", lambda c, m: c.kv.Put(
        etcdrpc.PutRequest(key=b"/p/j", value=b"v", lease=c.root_lease(b"/q/l")), timeout=10,
        metadata=m), ROOT_ONLY),
    ("LeaseLeases", lambda c, m: c.lease.LeaseLeases(etcdrpc.LeaseLeasesRequest(), timeout=10,
                                                     metadata=m), ALL_OK),
    ("Status", lambda c, m: c.maint.Status(etcdrpc.StatusRequest(), timeout=10, metadata=m),
     ALL_OK),
    ("HashKV", lambda c, m: c.maint.HashKV(etcdrpc.HashKVRequest(), timeout=10, metadata=m),
     ROOT_ONLY),
    ("Hash", lambda c, m: c.maint.Hash(etcdrpc.HashRequest(), timeout=10, metadata=m),
     ROOT_ONLY),
    ("Defragment", lambda c, m: c.maint.Defragment(etcdrpc.DefragmentRequest(), timeout=10,
                                                   metadata=m), ROOT_ONLY),
    ("MoveLeader to a member that does not exist", lambda c, m: c.maint.MoveLeader(
        etcdrpc.MoveLeaderRequest(targetID=12345), timeout=10, metadata=m),
     dict(ROOT_ONLY, root="bad-transferee")),
    ("MemberRemove of a member that does not exist", lambda c, m: c.cluster.MemberRemove(
        etcdrpc.MemberRemoveRequest(ID=12345), timeout=10, metadata=m),
     dict(ROOT_ONLY, root="member-not-found")),
    # etcd 3.5.28 made Alarm admin-only; 3.5.29 lets any authenticated user list
    # alarms again (etcdctl endpoint health does). Changes need the root role.
    ("Alarm GET", lambda c, m: c.maint.Alarm(
        etcdrpc.AlarmRequest(action=etcdrpc.AlarmRequest.GET), timeout=10, metadata=m),
     dict(ALL_OK, none="EMPTY", forged="BADTOK")),
    ("Alarm ACTIVATE NOSPACE", lambda c, m: alarm_activate(c, m), ROOT_ONLY),
    ("Alarm DEACTIVATE NOSPACE", lambda c, m: alarm(c, m, etcdrpc.AlarmRequest.DEACTIVATE),
     ROOT_ONLY),
    ("MemberList", lambda c, m: c.cluster.MemberList(etcdrpc.MemberListRequest(), timeout=10,
                                                     metadata=m), ALL_OK),
    ("UserList", lambda c, m: c.auth.UserList(etcdrpc.AuthUserListRequest(), timeout=10,
                                              metadata=m), ROOT_ONLY),
    ("RoleList", lambda c, m: c.auth.RoleList(etcdrpc.AuthRoleListRequest(), timeout=10,
                                              metadata=m), ROOT_ONLY),
    ("UserGet ro", lambda c, m: c.auth.UserGet(etcdrpc.AuthUserGetRequest(name="ro"),
                                               timeout=10, metadata=m),
     dict(ROOT_ONLY, ro="OK")),
    ("RoleGet rrw", lambda c, m: c.auth.RoleGet(etcdrpc.AuthRoleGetRequest(role="rrw"),
                                                timeout=10, metadata=m),
     dict(ROOT_ONLY, rw="OK")),
    ("RoleAdd", lambda c, m: c.auth.RoleAdd(etcdrpc.AuthRoleAddRequest(name="x-" + c.who),
                                            timeout=10, metadata=m), ROOT_ONLY),
    ("UserGrantRole", lambda c, m: c.auth.UserGrantRole(
        etcdrpc.AuthUserGrantRoleRequest(user="norole", role="rrw"), timeout=10, metadata=m),
     ROOT_ONLY),
    ("UserRevokeRole", lambda c, m: c.auth.UserRevokeRole(
        etcdrpc.AuthUserRevokeRoleRequest(name="norole", role="rrw"), timeout=10, metadata=m),
     ROOT_ONLY),
    # Not run as root: it would end the matrix (test_auth.py disables auth as root).
    ("AuthDisable", lambda c, m: c.auth.AuthDisable(etcdrpc.AuthDisableRequest(), timeout=10,
                                                    metadata=m) if c.who != "root"
     else "not run", dict(ROOT_ONLY, root="not run")),
    ("Lock in grant", lambda c, m: lock_and_unlock(c, m, b"/p/lk"), u(WRITERS)),
    ("Lock outside", lambda c, m: lock_and_unlock(c, m, b"/q/lk"), u(ROOT_ONLY)),
    ("Unlock of a key outside", lambda c, m: c.lock.Unlock(pb.UnlockRequest(key=b"/q"),
                                                           timeout=10, metadata=m),
     u(ROOT_ONLY)),
    ("Campaign in grant", lambda c, m: campaign_and_resign(c, m, b"/p/e"), u(WRITERS)),
    ("Campaign outside", lambda c, m: campaign_and_resign(c, m, b"/q/e"), u(ROOT_ONLY)),
    # The recipes' own puts, checked at apply as the caller: joining a lease
    # that holds a key outside the grant is refused as a KV put joining it.
    ("Lock in grant joining a lease that holds /q", lambda c, m: lock_with_lease(
        c, m, b"/p/lq", c.root_lease(b"/q/l")), u(ROOT_ONLY)),
    ("Campaign in grant joining a lease that holds /q", lambda c, m: campaign_with_lease(
        c, m, b"/p/eq", c.root_lease(b"/q/l")), u(ROOT_ONLY)),
    ("Proclaim in grant moving to a lease that holds /q", lambda c, m: proclaim_with_lease(
        c, m, b"/p/pq", c.root_lease(b"/q/l")), u(ROOT_ONLY)),
    ("Leader in grant", lambda c, m: c.elect.Leader(pb.LeaderRequest(name=b"/p/e"),
                                                    timeout=10, metadata=m),
     dict(u(READERS), root="U:no-leader", ro="U:no-leader", rw="U:no-leader")),
]

# etcd 3.4's answers where they differ (its bypasses, and its unmapped errors).
ETCD34 = {
    "Txn nested write outside": dict(ALL_OK, forged="BADTOK"),  # not even a token needed
    "Txn put prev_kv on write-only key": {"root": "OK", "ro": "DENIED", "rw": "OK",
                                          "norole": "DENIED", "none": "EMPTY",
                                          "forged": "BADTOK"},
    # Anyone compacts in 3.4 (root went first; the others reach the store).
    "Compact": {"root": "OK", "ro": "COMPACTED", "rw": "COMPACTED", "norole": "COMPACTED",
                "none": "COMPACTED", "forged": "BADTOK"},
    "Watch from /p/ to the end (\\0)": dict(WATCH_READERS),
    "LeaseTimeToLive keys of a lease on /q": dict(ALL_OK),
    "LeaseTimeToLive keys of a lease on /p/": dict(ALL_OK),
    "HashKV": {"root": "OK", "ro": "U:auth-DENIED", "rw": "U:auth-DENIED",
               "norole": "U:auth-DENIED", "none": "U:auth-EMPTY", "forged": "U:auth-BADTOK"},
    "Hash": {"root": "OK", "ro": "U:auth-DENIED", "rw": "U:auth-DENIED",
             "norole": "U:auth-DENIED", "none": "U:auth-EMPTY", "forged": "U:auth-BADTOK"},
    # 3.4 lets anyone ask for a leader transfer; 3.5 checks MoveLeader as admin.
    "MoveLeader to a member that does not exist": {i: "bad-transferee" for i in IDS},
    "Defragment": {"root": "OK", "ro": "U:auth-DENIED", "rw": "U:auth-DENIED",
                   "norole": "U:auth-DENIED", "none": "U:auth-EMPTY",
                   "forged": "U:auth-BADTOK"},
    # 3.4 (before CVE-2026-33413's fix) lets anyone raise and clear alarms.
    "Alarm GET": dict(ALL_OK, forged="U:auth-BADTOK"),
    "Alarm ACTIVATE NOSPACE": dict(ALL_OK, forged="U:auth-BADTOK"),
    "Alarm DEACTIVATE NOSPACE": dict(ALL_OK, forged="U:auth-BADTOK"),
    # 3.4.23 checks no lease of a put inside a txn (fixed in 3.4.44), and the
    # recipes' puts are txn puts.
    "Lock in grant joining a lease that holds /q": dict(u(ROOT_ONLY), rw="OK"),
    "Campaign in grant joining a lease that holds /q": dict(u(ROOT_ONLY), rw="OK"),
    "Proclaim in grant moving to a lease that holds /q": dict(u(ROOT_ONLY), rw="OK"),
}


@pytest.fixture(scope="module")
def matrix(request):
    import conftest
    group = conftest._Servers()
    server = group.factory()
    server._group = group
    ctl = server.ctl_ok
    for name, pw in PASSWORDS.items():
        ctl("user", "add", "%s:%s" % (name, pw))
    ctl("role", "add", "rro")
    ctl("role", "grant-permission", "--prefix", "rro", "read", "/p/")
    ctl("role", "add", "rrw")
    ctl("role", "grant-permission", "--prefix", "rrw", "readwrite", "/p/")
    ctl("role", "grant-permission", "--prefix", "rrw", "write", "/w/")
    ctl("user", "grant-role", "ro", "rro")
    ctl("user", "grant-role", "rw", "rrw")
    ctl("auth", "enable")
    root = ["--user", "root:rootpw"]
    ctl(*root, "put", "/p/a", "1")
    ctl(*root, "put", "/w/a", "1")
    ctl(*root, "put", "/q", "1")
    ctx = Ctx(server)
    auth = etcdrpc.AuthStub(server.channel())
    mds = {}
    for name, pw in PASSWORDS.items():
        tok = auth.Authenticate(etcdrpc.AuthenticateRequest(name=name, password=pw),
                                timeout=10).token
        mds[name] = [("token", tok)]
    mds["none"] = None
    # etcd waits for the raft index after the dot before it refuses a token: 1
    # is applied already, so both servers answer at once.
    mds["forged"] = [("token", "forged.1")]
    ctx.root = mds["root"]
    yield ctx, mds
    group.teardown()


def outcome(fn, ctx, md):
    try:
        r = fn(ctx, md)
    except grpc.RpcError as e:
        return REFUSALS.get((e.code(), e.details()), str((e.code(), e.details())))
    return r if isinstance(r, str) else "OK"


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_matrix(matrix, row):
    ctx, mds = matrix
    name, fn, want = row
    if IS_REFERENCE_ETCD_34 and name in ETCD34:
        want = ETCD34[name]
    got = {}
    for who in IDS:
        ctx.who = who
        got[who] = outcome(fn, ctx, mds[who])
    print("%s: %s" % (name, got))
    assert got == want

"""v3lockpb and v3electionpb messages for tests, built at run time on top of
python3-etcd3's etcdserverpb/mvccpb descriptors (it ships no stubs for the
Lock and Election services). Field numbers are etcd's."""

from etcd3 import etcdrpc  # noqa: F401  (registers rpc.proto and kv.proto)
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _file(name, package, deps, messages):
    fd = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    fd.dependency.extend(deps)
    for mname, fields in messages:
        m = fd.message_type.add(name=mname)
        for fname, num, ftype, tname in fields:
            f = m.field.add(name=fname, number=num, type=ftype, label=_F.LABEL_OPTIONAL)
            if tname:
                f.type_name = tname
    return fd


_B, _I, _M = _F.TYPE_BYTES, _F.TYPE_INT64, _F.TYPE_MESSAGE
_H = ("header", 1, _M, ".etcdserverpb.ResponseHeader")

_LOCK = _file("metad_test_v3lock.proto", "v3lockpb", ["rpc.proto"], [
    ("LockRequest", [("name", 1, _B, None), ("lease", 2, _I, None)]),
    ("LockResponse", [_H, ("key", 2, _B, None)]),
    ("UnlockRequest", [("key", 1, _B, None)]),
    ("UnlockResponse", [_H]),
])
_ELECTION = _file("metad_test_v3election.proto", "v3electionpb", ["rpc.proto", "kv.proto"], [
    ("LeaderKey", [("name", 1, _B, None), ("key", 2, _B, None), ("rev", 3, _I, None),
                   ("lease", 4, _I, None)]),
    ("CampaignRequest", [("name", 1, _B, None), ("lease", 2, _I, None), ("value", 3, _B, None)]),
    ("CampaignResponse", [_H, ("leader", 2, _M, ".v3electionpb.LeaderKey")]),
    ("LeaderRequest", [("name", 1, _B, None)]),
    ("LeaderResponse", [_H, ("kv", 2, _M, ".mvccpb.KeyValue")]),
    ("ResignRequest", [("leader", 1, _M, ".v3electionpb.LeaderKey")]),
    ("ResignResponse", [_H]),
    ("ProclaimRequest", [("leader", 1, _M, ".v3electionpb.LeaderKey"), ("value", 2, _B, None)]),
    ("ProclaimResponse", [_H]),
])

_pool = descriptor_pool.Default()
for _fd in (_LOCK, _ELECTION):
    _pool.AddSerializedFile(_fd.SerializeToString())
_factory = message_factory.MessageFactory(_pool)
for _fd in (_LOCK, _ELECTION):
    for _m in _fd.message_type:
        _d = _pool.FindMessageTypeByName("%s.%s" % (_fd.package, _m.name))
        globals()[_m.name] = _factory.GetPrototype(_d)


def _unary(channel, path, req_cls, resp_cls):
    return channel.unary_unary(path, request_serializer=req_cls.SerializeToString,
                               response_deserializer=resp_cls.FromString)


class LockStub:
    def __init__(self, channel):
        self.Lock = _unary(channel, "/v3lockpb.Lock/Lock", LockRequest, LockResponse)  # noqa: F821
        self.Unlock = _unary(channel, "/v3lockpb.Lock/Unlock", UnlockRequest,  # noqa: F821
                             UnlockResponse)  # noqa: F821


class ElectionStub:
    def __init__(self, channel):
        g = globals()
        for rpc, req, resp in (("Campaign", "CampaignRequest", "CampaignResponse"),
                               ("Proclaim", "ProclaimRequest", "ProclaimResponse"),
                               ("Leader", "LeaderRequest", "LeaderResponse"),
                               ("Resign", "ResignRequest", "ResignResponse")):
            setattr(self, rpc, _unary(channel, "/v3electionpb.Election/" + rpc, g[req], g[resp]))
        self.Observe = channel.unary_stream(
            "/v3electionpb.Election/Observe",
            request_serializer=g["LeaderRequest"].SerializeToString,
            response_deserializer=g["LeaderResponse"].FromString)

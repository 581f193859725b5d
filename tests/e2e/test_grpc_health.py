"""grpc.health.v1.Health on the client port, as etcd registers it: the
overall service "" is SERVING, another name is unknown. Passes against the
reference etcd (METAD_BIN=/usr/bin/etcd)."""

import queue
import threading

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def _messages():
    """HealthCheckRequest/Response built from their descriptor (gRPC's
    health.proto; Debian packages no Python module of it)."""
    f = descriptor_pb2.FileDescriptorProto(name="metad_test_health.proto",
                                           package="grpc.health.v1", syntax="proto3")
    req = f.message_type.add(name="HealthCheckRequest")
    req.field.add(name="service", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    resp = f.message_type.add(name="HealthCheckResponse")
    enum = resp.enum_type.add(name="ServingStatus")
    for i, n in enumerate(("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")):
        enum.value.add(name=n, number=i)
    resp.field.add(name="status", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_ENUM,
                   type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus",
                   label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    get = getattr(message_factory, "GetMessageClass", None)
    if get is None:     # older python3-protobuf
        fac = message_factory.MessageFactory(pool)
        get = lambda d: fac.GetPrototype(d)  # noqa: E731
    return (get(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest")),
            get(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")))


Req, Resp = _messages()
SERVING, SERVICE_UNKNOWN = 1, 3


def _stubs(ch):
    check = ch.unary_unary("/grpc.health.v1.Health/Check",
                           request_serializer=Req.SerializeToString,
                           response_deserializer=Resp.FromString)
    watch = ch.unary_stream("/grpc.health.v1.Health/Watch",
                            request_serializer=Req.SerializeToString,
                            response_deserializer=Resp.FromString)
    return check, watch


def test_check(server):
    with server.new_channel() as ch:
        check, _ = _stubs(ch)
        assert check(Req(), timeout=10).status == SERVING
        with pytest.raises(grpc.RpcError) as e:
            check(Req(service="etcdserverpb.KV"), timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert e.value.details() == "unknown service"


@pytest.mark.parametrize("service,want", [("", SERVING), ("nope", SERVICE_UNKNOWN)])
def test_watch_sends_the_status_and_stays_open(server, service, want):
    with server.new_channel() as ch:
        _, watch = _stubs(ch)
        call = watch(Req(service=service), timeout=30)
        got = queue.Queue()

        def read():
            try:
                for r in call:
                    got.put(r.status)
                got.put("end")
            except grpc.RpcError as e:
                got.put(e.code())
        t = threading.Thread(target=read)
        t.start()
        assert got.get(timeout=10) == want
        # Nothing more, and the stream is still open (etcd's too) ...
        with pytest.raises(queue.Empty):
            got.get(timeout=0.5)
        # ... until the client leaves.
        call.cancel()
        assert got.get(timeout=10) == grpc.StatusCode.CANCELLED
        t.join(timeout=10)

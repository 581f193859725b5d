/*
 * tools/bench/msg.h — byte buffers to and from protobuf-c messages, for the
 * few places that read an answer (watch events, lease ids).
 */
#ifndef METAD_BENCH_MSG_H
#define METAD_BENCH_MSG_H

#include <grpc/byte_buffer.h>
#include <protobuf-c/protobuf-c.h>

/* Unpacks bb as desc. Returns the message (free with
 * protobuf_c_message_free_unpacked) or NULL if it does not parse. bb stays
 * the caller's. */
ProtobufCMessage *bench_msg_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb);

/* A byte buffer holding msg packed. Ownership moves to the caller. */
grpc_byte_buffer *bench_msg_pack(const ProtobufCMessage *msg);

#endif

/*
 * tools/bench/msg.c — protobuf-c <-> grpc_byte_buffer.
 */
#include "msg.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

ProtobufCMessage *bench_msg_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader rd;
	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return NULL;
	/* One slice in the common case; readall copies only when there are more. */
	grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all),
							GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	return m;
}

grpc_byte_buffer *bench_msg_pack(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	grpc_slice s = grpc_slice_malloc(len);
	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

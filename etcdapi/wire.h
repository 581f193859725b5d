/*
 * etcdapi/wire.h — naming a protobuf decoding failure as etcd does.
 */
#ifndef METAD_ETCDAPI_WIRE_H
#define METAD_ETCDAPI_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Writes etcd's decoder message for bytes that failed to unpack as d. */
void wire_error(const ProtobufCMessageDescriptor *d, const uint8_t *b, size_t n, char *out,
		size_t len);

#endif

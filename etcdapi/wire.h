/*
 * etcdapi/wire.h — naming a protobuf decoding failure as etcd does.
 */
#ifndef METAD_ETCDAPI_WIRE_H
#define METAD_ETCDAPI_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Writes etcd's decoder message for bytes that failed to unpack as d. */
void wire_error(const ProtobufCMessageDescriptor *d, const uint8_t *b, size_t n, char *out,
		size_t len);

/*
 * After a successful unpack: a field Go's decoders refuse but protobuf-c
 * took, anywhere in m (nested messages included). protobuf-c keeps a field
 * numbered 0 as an unknown field when its tag is spelled in more than one
 * byte (0x80 0x00), and packs it back as 0x00, which nobody decodes: such a
 * request would become a log entry no member can apply. Writes etcd's
 * message for it (naming the innermost message, as Go's decoders do) into
 * out and returns true; false when m is sound.
 */
bool wire_refused(const ProtobufCMessage *m, char *out, size_t len);

#endif

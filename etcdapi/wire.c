/*
 * etcdapi/wire.c — why a request failed to decode, in etcd's words.
 *
 * protobuf-c only says that unpacking failed. etcd's (gogo) decoders name
 * the problem, and clients and tests see that text after "grpc: error
 * unmarshalling request: ". This walks the top level of the message the way
 * those decoders do and reports the first problem they would report; and,
 * for what protobuf-c accepts but Go refuses, walks the unpacked message.
 */
#include <stdio.h>
#include <string.h>

#include "etcdapi/wire.h"

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_BYTES = 2, WT_START_GROUP = 3, WT_END_GROUP = 4,
       WT_FIXED32 = 5 };

/* Reads a varint: 0 ok, 1 EOF, 2 overflow. */
static int varint(const uint8_t *b, size_t n, size_t *i, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0;; shift += 7) {
		if (shift >= 64)
			return 2;
		if (*i >= n)
			return 1;
		uint8_t c = b[(*i)++];
		v |= (uint64_t)(c & 0x7f) << shift;
		if (c < 0x80)
			break;
	}
	*out = v;
	return 0;
}

static int wire_type_of(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return WT_FIXED64;
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return WT_FIXED32;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
	case PROTOBUF_C_TYPE_MESSAGE:
		return WT_BYTES;
	default:
		return WT_VARINT;
	}
}

/* Go's exported name for a proto field: range_end -> RangeEnd. */
static void go_name(const char *proto, char *out, size_t len)
{
	size_t j = 0;
	int up = 1;
	for (; *proto && j + 1 < len; proto++) {
		if (*proto == '_') {
			up = 1;
			continue;
		}
		out[j++] = up && *proto >= 'a' && *proto <= 'z' ? (char)(*proto - 32) : *proto;
		up = 0;
	}
	out[j] = 0;
}

void wire_error(const ProtobufCMessageDescriptor *d, const uint8_t *b, size_t n, char *out,
		size_t len)
{
	static const char eof[] = "unexpected EOF";
	size_t i = 0;
	while (i < n) {
		uint64_t tag, v;
		int rv = varint(b, n, &i, &tag);
		if (rv != 0) {
			snprintf(out, len, "%s", rv == 1 ? eof : "proto: integer overflow");
			return;
		}
		uint64_t num = tag >> 3;
		int wt = (int)(tag & 7);
		if (wt == WT_END_GROUP) {
			snprintf(out, len, "proto: %s: wiretype end group for non-group", d->short_name);
			return;
		}
		if (num == 0 || num > 0x7fffffff) {
			snprintf(out, len, "proto: %s: illegal tag %lld (wire type %llu)", d->short_name,
				 (long long)(int32_t)num, (unsigned long long)tag);
			return;
		}
		const ProtobufCFieldDescriptor *f =
			protobuf_c_message_descriptor_get_field(d, (unsigned)num);
		if (f != NULL && wt != wire_type_of(f) &&
		    !(wt == WT_BYTES && f->label == PROTOBUF_C_LABEL_REPEATED)) {
			char name[128];
			go_name(f->name, name, sizeof(name));
			snprintf(out, len, "proto: wrong wireType = %d for field %s", wt, name);
			return;
		}
		switch (wt) {
		case WT_VARINT:
			rv = varint(b, n, &i, &v);
			break;
		case WT_FIXED64:
			rv = n - i < 8 ? 1 : 0;
			i += 8;
			break;
		case WT_FIXED32:
			rv = n - i < 4 ? 1 : 0;
			i += 4;
			break;
		case WT_BYTES:
			rv = varint(b, n, &i, &v);
			if (rv == 0 && (int64_t)v < 0) {
				snprintf(out, len, "proto: negative length found during unmarshaling");
				return;
			}
			if (rv == 0 && v > n - i)
				rv = 1;
			i += rv == 0 ? v : 0;
			break;
		default:
			snprintf(out, len, "proto: illegal wireType %d", wt);
			return;
		}
		if (rv != 0) {
			snprintf(out, len, "%s", rv == 1 ? eof : "proto: integer overflow");
			return;
		}
	}
	/* The top level is sound: a nested message was cut short. */
	snprintf(out, len, "%s", eof);
}

/* Depth of nesting walked (nested txns; each level is one op of the
 * --max-txn-ops budget, so validation refuses far less): deeper is refused
 * here, before anything recurses over it again. */
#define REFUSED_DEPTH 1024

static bool refused(const ProtobufCMessage *m, int depth, char *out, size_t len)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (depth > REFUSED_DEPTH) {
		snprintf(out, len, "proto: %s: nested too deep", d->short_name);
		return true;
	}
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0) {
			snprintf(out, len, "proto: %s: illegal tag 0 (wire type %d)", d->short_name,
				 (int)m->unknown_fields[i].wire_type);
			return true;
		}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *at = (const char *)m + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			const ProtobufCMessage *const *v = *(const ProtobufCMessage *const *const *)at;
			for (size_t k = 0; k < n; k++)
				if (v[k] != NULL && refused(v[k], depth + 1, out, len))
					return true;
			continue;
		}
		/* A oneof member is there only while its case is set. */
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
			continue;
		const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)at;
		if (sub != NULL && refused(sub, depth + 1, out, len))
			return true;
	}
	return false;
}

bool wire_refused(const ProtobufCMessage *m, char *out, size_t len)
{
	return refused(m, 0, out, len);
}

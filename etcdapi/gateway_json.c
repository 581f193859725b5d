/*
 * etcdapi/gateway_json.c — protobuf <-> JSON as etcd's grpc-gateway
 * (jsonpb with OrigName) writes and reads it, driven by protobuf-c's
 * descriptors, so every message of the API is covered without per-message
 * code. JSON text is parsed and printed by jansson.
 *
 * Out: fields under their .proto names; 64-bit integers as strings; bytes
 * in standard base64; enums by name; zero scalars, empty strings and empty
 * lists left out (a set oneof member and a present sub-message are kept).
 * In: .proto names or lowerCamelCase names; integers as numbers or strings;
 * enums by name or number; unknown fields ignored; null = unset.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcdapi/gateway.h"

#define MAX_DEPTH 32

/* ---- protobuf -> JSON ---- */

static json_t *b64_json(const ProtobufCBinaryData *b)
{
	size_t cap = 4 * ((b->len + 2) / 3) + 1;
	char *s = malloc(cap);
	if (s == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, b->data, (int)b->len);
	json_t *j = json_stringn(s, strlen(s));
	free(s);
	return j;
}

static json_t *u64_json(uint64_t v)
{
	char s[24];
	snprintf(s, sizeof(s), "%" PRIu64, v);
	return json_string(s);
}

static json_t *i64_json(int64_t v)
{
	char s[24];
	snprintf(s, sizeof(s), "%" PRId64, v);
	return json_string(s);
}

static json_t *enum_json(const ProtobufCEnumDescriptor *d, int v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
	return ev ? json_string(ev->name) : json_integer(v);
}

static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return i64_json(*(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return u64_json(*(const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return json_real(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return json_real(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM:
		return enum_json(f->descriptor, *(const int *)p);
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return json_string(s ? s : "");
	}
	case PROTOBUF_C_TYPE_BYTES:
		return b64_json((const ProtobufCBinaryData *)p);
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
		return m ? gw_pb_to_json_depth(m, depth + 1) : json_object();
	}
	}
	return json_null();
}

static size_t type_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

/* Whether a proto3 scalar holds its zero value (then jsonpb leaves it out). */
static bool is_zero(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return s == NULL || s[0] == 0;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(void *const *)p == NULL;
	default: {
		static const uint8_t zero[16];
		return memcmp(p, zero, type_size(f->type)) == 0;
	}
	}
}

json_t *gw_pb_to_json_depth(const ProtobufCMessage *m, int depth)
{
	json_t *o = json_object();
	if (o == NULL || depth > MAX_DEPTH)
		return o;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;
		const void *p = base + f->offset;
		json_t *v = NULL;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			if (n == 0)
				continue;
			v = json_array();
			const char *arr = *(char *const *)p;
			for (size_t k = 0; k < n && v; k++)
				json_array_append_new(v, value_json(f, arr + k * type_size(f->type), depth));
		} else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
				continue;
			v = value_json(f, p, depth);
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
			   f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
			if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
				continue;
			v = value_json(f, p, depth);
		} else {
			if (is_zero(f, p))
				continue;
			v = value_json(f, p, depth);
		}
		if (v != NULL)
			json_object_set_new(o, f->name, v);
	}
	return o;
}

json_t *gw_pb_to_json(const ProtobufCMessage *m)
{
	return gw_pb_to_json_depth(m, 0);
}

/* ---- JSON -> protobuf ---- */

static void camel(const char *name, char *out, size_t len)
{
	size_t o = 0;
	bool up = false;
	for (const char *p = name; *p && o + 1 < len; p++) {
		if (*p == '_') {
			up = true;
			continue;
		}
		out[o++] = up ? (char)toupper((unsigned char)*p) : *p;
		up = false;
	}
	out[o] = 0;
}

static int set_err(char *err, size_t errlen, const char *fmt, const char *field)
{
	snprintf(err, errlen, fmt, field);
	return -1;
}

static int json_int(json_t *j, bool is_signed, int64_t *s, uint64_t *u)
{
	if (json_is_integer(j)) {
		*s = json_integer_value(j);
		*u = (uint64_t)*s;
		return (!is_signed && *s < 0) ? -1 : 0;
	}
	if (json_is_real(j)) {
		double d = json_real_value(j);
		*s = (int64_t)d;
		*u = (uint64_t)*s;
		return (d == (double)*s && (is_signed || d >= 0)) ? 0 : -1;
	}
	if (!json_is_string(j))
		return -1;
	const char *str = json_string_value(j);
	char *end;
	errno = 0;
	if (is_signed) {
		*s = strtoll(str, &end, 10);
		*u = (uint64_t)*s;
	} else {
		if (str[0] == '-')
			return -1;
		*u = strtoull(str, &end, 10);
		*s = (int64_t)*u;
	}
	return (errno != 0 || end == str || *end != 0) ? -1 : 0;
}

static int b64_decode(const char *s, ProtobufCBinaryData *out)
{
	size_t n = strlen(s);
	char *tmp = malloc(n + 4);
	if (tmp == NULL)
		return -1;
	/* jsonpb accepts URL-safe and unpadded input too. */
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		tmp[k++] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (k % 4 != 0)
		tmp[k++] = '=';
	tmp[k] = 0;
	size_t pad = 0;
	if (k >= 1 && tmp[k - 1] == '=')
		pad++;
	if (k >= 2 && tmp[k - 2] == '=')
		pad++;
	out->data = malloc(k / 4 * 3 + 1);
	int r = out->data ? EVP_DecodeBlock(out->data, (unsigned char *)tmp, (int)k) : -1;
	free(tmp);
	if (r < 0 || (size_t)r < pad) {
		free(out->data);
		out->data = NULL;
		out->len = 0;
		return -1;
	}
	out->len = (size_t)r - pad;
	return 0;
}

static int value_from_json(const ProtobufCFieldDescriptor *f, json_t *j, void *p, int depth,
			   char *err, size_t errlen)
{
	int64_t s = 0;
	uint64_t u = 0;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (json_int(j, true, &s, &u) != 0 || s < INT32_MIN || s > INT32_MAX)
			return set_err(err, errlen, "bad value for field %s", f->name);
		*(int32_t *)p = (int32_t)s;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (json_int(j, false, &s, &u) != 0 || u > UINT32_MAX)
			return set_err(err, errlen, "bad value for field %s", f->name);
		*(uint32_t *)p = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (json_int(j, true, &s, &u) != 0)
			return set_err(err, errlen, "bad value for field %s", f->name);
		*(int64_t *)p = s;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (json_int(j, false, &s, &u) != 0)
			return set_err(err, errlen, "bad value for field %s", f->name);
		*(uint64_t *)p = u;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		if (!json_is_number(j))
			return set_err(err, errlen, "bad value for field %s", f->name);
		if (f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)p = (float)json_number_value(j);
		else
			*(double *)p = json_number_value(j);
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(j))
			return set_err(err, errlen, "bad value for field %s", f->name);
		*(protobuf_c_boolean *)p = json_is_true(j);
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		if (json_is_string(j)) {
			const ProtobufCEnumValue *ev =
				protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(j));
			if (ev == NULL)
				return set_err(err, errlen, "unknown enum value for field %s", f->name);
			*(int *)p = ev->value;
			return 0;
		}
		if (json_int(j, true, &s, &u) != 0 || s < INT32_MIN || s > INT32_MAX)
			return set_err(err, errlen, "bad value for field %s", f->name);
		*(int *)p = (int)s;
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING:
		if (!json_is_string(j))
			return set_err(err, errlen, "bad value for field %s", f->name);
		*(char **)p = strndup(json_string_value(j), json_string_length(j));
		return *(char **)p ? 0 : set_err(err, errlen, "out of memory at %s", f->name);
	case PROTOBUF_C_TYPE_BYTES:
		if (!json_is_string(j) || b64_decode(json_string_value(j), p) != 0)
			return set_err(err, errlen, "illegal base64 data in field %s", f->name);
		return 0;
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *m = NULL;
		if (gw_json_to_pb_depth(f->descriptor, j, &m, depth + 1, err, errlen) != 0)
			return -1;
		*(ProtobufCMessage **)p = m;
		return 0;
	}
	}
	return set_err(err, errlen, "unsupported field %s", f->name);
}

static const ProtobufCFieldDescriptor *field_by_json_name(const ProtobufCMessageDescriptor *d,
							  const char *key)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
	if (f != NULL)
		return f;
	for (unsigned i = 0; i < d->n_fields; i++) {
		char c[128];
		camel(d->fields[i].name, c, sizeof(c));
		if (strcmp(c, key) == 0)
			return &d->fields[i];
	}
	return NULL;
}

int gw_json_to_pb_depth(const ProtobufCMessageDescriptor *d, json_t *j, ProtobufCMessage **out,
			int depth, char *err, size_t errlen)
{
	if (!json_is_object(j) || depth > MAX_DEPTH)
		return set_err(err, errlen, "%s", depth > MAX_DEPTH ? "message nested too deeply"
								  : "expected a JSON object");
	ProtobufCMessage *m = calloc(1, d->sizeof_message);
	if (m == NULL)
		return set_err(err, errlen, "%s", "out of memory");
	protobuf_c_message_init(d, m);
	const char *key;
	json_t *v;
	json_object_foreach(j, key, v)
	{
		const ProtobufCFieldDescriptor *f = field_by_json_name(d, key);
		if (f == NULL || json_is_null(v))
			continue;
		char *base = (char *)m;
		void *p = base + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			if (!json_is_array(v)) {
				set_err(err, errlen, "field %s must be a list", f->name);
				goto fail;
			}
			size_t *np = (size_t *)(base + f->quantifier_offset);
			if (*np != 0) /* given twice (name and camelCase): keep the first */
				continue;
			size_t n = json_array_size(v), es = type_size(f->type);
			char *arr = calloc(n ? n : 1, es);
			if (arr == NULL) {
				set_err(err, errlen, "%s", "out of memory");
				goto fail;
			}
			*(char **)p = arr;
			for (size_t k = 0; k < n; k++) {
				if (value_from_json(f, json_array_get(v, k), arr + k * es, depth, err,
						    errlen) != 0)
					goto fail;
				(*np)++;
			}
			continue;
		}
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(void **)p != NULL)
			continue;
		if (f->type == PROTOBUF_C_TYPE_STRING && *(char **)p != NULL &&
		    *(char **)p != (char *)f->default_value)
			continue;
		if (f->type == PROTOBUF_C_TYPE_BYTES && ((ProtobufCBinaryData *)p)->data != NULL)
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t *cs = (uint32_t *)(base + f->quantifier_offset);
			if (*cs != 0) {
				set_err(err, errlen, "oneof field %s set twice", f->name);
				goto fail;
			}
			if (value_from_json(f, v, p, depth, err, errlen) != 0)
				goto fail;
			*cs = f->id;
			continue;
		}
		if (f->type == PROTOBUF_C_TYPE_STRING)
			*(char **)p = NULL; /* not the shared default: ours to free */
		if (value_from_json(f, v, p, depth, err, errlen) != 0)
			goto fail;
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
		    f->type != PROTOBUF_C_TYPE_STRING)
			*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
	}
	*out = m;
	return 0;
fail:
	gw_pb_free(m);
	return -1;
}

int gw_json_to_pb(const ProtobufCMessageDescriptor *d, json_t *j, ProtobufCMessage **out,
		  char *err, size_t errlen)
{
	return gw_json_to_pb_depth(d, j, out, 0, err, errlen);
}

void gw_pb_free(ProtobufCMessage *m)
{
	/* Every pointer in m came from malloc, as unpacked messages' do (a NULL
	 * string is restored to the default first, which free_unpacked skips). */
	if (m == NULL)
		return;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED) {
			char **sp = (char **)((char *)m + f->offset);
			if (*sp == NULL)
				*sp = (char *)f->default_value;
		}
	}
	protobuf_c_message_free_unpacked(m, NULL);
}

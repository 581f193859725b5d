/*
 * tools/bench/wscan.c — a WatchResponse read straight from its wire bytes.
 * Field numbers are etcd's rpc.proto / kv.proto; unknown fields are skipped
 * as protobuf requires.
 */
#include "wscan.h"

#include <string.h>

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

struct cur {
	const uint8_t *p, *end;
};

static int varint(struct cur *c, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (c->p == c->end)
			return -1;
		uint8_t b = *c->p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* The next field: its number, wire type, and for WT_LEN its bytes, for
 * WT_VARINT its value. Other wire types are skipped over. */
static int field(struct cur *c, uint32_t *num, int *wt, struct cur *sub, uint64_t *val)
{
	uint64_t tag;
	if (varint(c, &tag) != 0 || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
		return -1;
	*num = (uint32_t)(tag >> 3);
	*wt = (int)(tag & 7);
	switch (*wt) {
	case WT_VARINT:
		return varint(c, val);
	case WT_I64:
	case WT_I32: {
		size_t n = *wt == WT_I64 ? 8 : 4;
		if ((size_t)(c->end - c->p) < n)
			return -1;
		c->p += n;
		return 0;
	}
	case WT_LEN: {
		uint64_t n;
		if (varint(c, &n) != 0 || n > (uint64_t)(c->end - c->p))
			return -1;
		sub->p = c->p;
		sub->end = c->p + n;
		c->p += n;
		return 0;
	}
	default:
		return -1; /* groups are not in etcd's protos */
	}
}

/* mvccpb.KeyValue: only value (5) is wanted. */
static int scan_kv(struct cur c, const uint8_t **value, size_t *len)
{
	while (c.p < c.end) {
		uint32_t num;
		int wt;
		struct cur sub;
		uint64_t v;
		if (field(&c, &num, &wt, &sub, &v) != 0)
			return -1;
		if (num == 5 && wt == WT_LEN) {
			*value = sub.p;
			*len = (size_t)(sub.end - sub.p);
		}
	}
	return 0;
}

/* mvccpb.Event: type (1), kv (2); prev_kv (3) is skipped. */
static int scan_event(struct cur c, bench_wscan_event_fn fn, void *arg)
{
	int type = 0;
	const uint8_t *value = NULL;
	size_t len = 0;
	while (c.p < c.end) {
		uint32_t num;
		int wt;
		struct cur sub;
		uint64_t v;
		if (field(&c, &num, &wt, &sub, &v) != 0)
			return -1;
		if (num == 1 && wt == WT_VARINT)
			type = (int)v;
		else if (num == 2 && wt == WT_LEN && scan_kv(sub, &value, &len) != 0)
			return -1;
	}
	if (fn != NULL)
		fn(arg, type, value, len);
	return 0;
}

int bench_wscan(const uint8_t *p, size_t len, struct bench_wscan *out, bench_wscan_event_fn on_event,
		void *arg)
{
	memset(out, 0, sizeof(*out));
	struct cur c = {p, p + len};
	while (c.p < c.end) {
		uint32_t num;
		int wt;
		struct cur sub;
		uint64_t v = 0;
		if (field(&c, &num, &wt, &sub, &v) != 0)
			return -1;
		if (wt == WT_VARINT) {
			switch (num) {
			case 2:
				out->watch_id = (int64_t)v;
				break;
			case 3:
				out->created = v != 0;
				break;
			case 4:
				out->canceled = v != 0;
				break;
			case 5:
				out->compact_revision = (int64_t)v;
				break;
			case 7:
				out->fragment = v != 0;
				break;
			}
		} else if (wt == WT_LEN) {
			if (num == 6) {
				out->reason = sub.p;
				out->reason_len = (size_t)(sub.end - sub.p);
			} else if (num == 11) {
				if (scan_event(sub, on_event, arg) != 0)
					return -1;
				out->n_events++;
			}
		}
	}
	return 0;
}

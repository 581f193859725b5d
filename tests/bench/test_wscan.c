/*
 * tests/bench/test_wscan.c — metad-bench's in-place WatchResponse scanner
 * against responses packed by protobuf-c: every field it reports, every
 * event's type and value (prev_kv and unknown fields skipped), and every
 * truncation of a response handled without reading past its end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.pb-c.h"
#include "wscan.h"
#include "tests/expect.h"

struct seen {
	int n;
	int type[8];
	char value[8][32];
};

static void on_event(void *arg, int type, const uint8_t *value, size_t len)
{
	struct seen *s = arg;
	if (s->n >= 8)
		return;
	s->type[s->n] = type;
	snprintf(s->value[s->n], sizeof(s->value[0]), "%.*s", (int)len,
		 value ? (const char *)value : "");
	s->n++;
}

static ProtobufCBinaryData bin(const char *s)
{
	ProtobufCBinaryData b = {strlen(s), (uint8_t *)s};
	return b;
}

static uint8_t *pack(const Etcdserverpb__WatchResponse *r, size_t *len)
{
	*len = etcdserverpb__watch_response__get_packed_size(r);
	uint8_t *buf = malloc(*len ? *len : 1);
	etcdserverpb__watch_response__pack(r, buf);
	return buf;
}

static void test_events(void)
{
	Mvccpb__KeyValue kv[3], prev = MVCCPB__KEY_VALUE__INIT;
	Mvccpb__Event ev[3], *evp[3];
	const char *values[3] = {"v-one", "", "v-three"};
	prev.key = bin("k0");
	prev.value = bin("the-previous-value");
	for (int i = 0; i < 3; i++) {
		mvccpb__key_value__init(&kv[i]);
		kv[i].key = bin("bench/k");
		kv[i].value = bin(values[i]);
		kv[i].mod_revision = 1000 + i;
		kv[i].create_revision = 7;
		kv[i].version = 3;
		kv[i].lease = 0x1234567890;
		mvccpb__event__init(&ev[i]);
		ev[i].kv = &kv[i];
		ev[i].type = i == 1 ? MVCCPB__EVENT__EVENT_TYPE__DELETE : MVCCPB__EVENT__EVENT_TYPE__PUT;
		evp[i] = &ev[i];
	}
	ev[2].prev_kv = &prev; /* skipped: its value must not replace kv's */
	Etcdserverpb__ResponseHeader hd = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	hd.cluster_id = 0xfeedface;
	hd.revision = 1002;
	Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	r.header = &hd;
	r.watch_id = 300;
	r.fragment = 1;
	r.events = evp;
	r.n_events = 3;
	size_t len;
	uint8_t *buf = pack(&r, &len);

	struct bench_wscan w;
	struct seen s = {0};
	EXPECT(bench_wscan(buf, len, &w, on_event, &s) == 0);
	EXPECT(w.watch_id == 300 && w.fragment && !w.created && !w.canceled);
	EXPECT(w.n_events == 3 && s.n == 3);
	for (int i = 0; i < 3 && i < s.n; i++)
		EXPECT(strcmp(s.value[i], values[i]) == 0);
	EXPECT(s.type[0] == 0 && s.type[1] == 1 && s.type[2] == 0);

	/* Every cut of the bytes: no crash, no read past the end (ASan), and
	 * a cut inside an event never reports that event. */
	for (size_t cut = 0; cut < len; cut++) {
		struct seen t = {0};
		int rv = bench_wscan(buf, cut, &w, on_event, &t);
		EXPECT(rv == -1 || (rv == 0 && (size_t)t.n == w.n_events && t.n <= 3));
	}
	free(buf);
}

static void test_control(void)
{
	Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	r.watch_id = -1;
	r.created = 1;
	r.canceled = 1;
	r.compact_revision = 42;
	r.cancel_reason = "mvcc: duplicate watch ID provided on the WatchStream";
	size_t len;
	uint8_t *buf = pack(&r, &len);
	struct bench_wscan w;
	EXPECT(bench_wscan(buf, len, &w, NULL, NULL) == 0);
	EXPECT(w.watch_id == -1 && w.created && w.canceled && w.compact_revision == 42);
	EXPECT(w.reason_len == strlen(r.cancel_reason) &&
	       memcmp(w.reason, r.cancel_reason, w.reason_len) == 0);
	EXPECT(w.n_events == 0);
	free(buf);

	/* An unknown fixed64 field (99) and an unknown varint are skipped; a
	 * group wire type is refused. */
	const uint8_t odd[] = {0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, 0x10, 0x05, 0xa8, 0x1f, 0x01};
	EXPECT(bench_wscan(odd, sizeof(odd), &w, NULL, NULL) == 0 && w.watch_id == 5);
	const uint8_t group[] = {0x0b};
	EXPECT(bench_wscan(group, sizeof(group), &w, NULL, NULL) == -1);
	const uint8_t huge_len[] = {0x5a, 0xff, 0xff, 0xff, 0xff, 0x0f};
	EXPECT(bench_wscan(huge_len, sizeof(huge_len), &w, NULL, NULL) == -1);
}

int main(void)
{
	test_events();
	test_control();
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}

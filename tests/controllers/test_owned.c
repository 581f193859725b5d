/*
 * tests/controllers/test_owned.c — which client writes touch a key only the
 * controllers write (controllers_owned): single keys of every kind in
 * docs/controllers.md, deletes of fired wills, and ranges that reach into
 * an owned prefix or a share group's leader key.
 */
#include <string.h>

#include "controllers/controllers.h"
#include "tests/expect.h"

static bool put(const char *k)
{
	return controllers_owned((const uint8_t *)k, strlen(k), NULL, 0, false);
}

static bool del(const char *k)
{
	return controllers_owned((const uint8_t *)k, strlen(k), NULL, 0, true);
}

/* A range delete of [k, e); e "" stands for "\0" (every key >= k). */
static bool del_range(const char *k, const char *e)
{
	static const uint8_t zero = 0;
	size_t en = strlen(e);
	return controllers_owned((const uint8_t *)k, strlen(k), en ? (const uint8_t *)e : &zero,
				 en ? en : 1, true);
}

static void test_single_keys(void)
{
	/* Controllers' keys. */
	EXPECT(put("/_meta/status/nodes/broker/b1"));
	EXPECT(put("/_meta/journal/shards/ns/s"));
	EXPECT(put("/_meta/journal/segments/ns/s/0000000000"));
	EXPECT(put("/_meta/mqtt/expiring/b1/7/30"));
	EXPECT(put("/_meta/mqtt/will-timers/t/c"));
	EXPECT(put("/_meta/mqtt/connector-assign/t/n"));
	EXPECT(put("/_meta/mqtt/share/t/g/leader"));
	EXPECT(put("/_meta/mqtt/will-fire/t/c"));
	EXPECT(del("/_meta/status/nodes/broker/b1"));
	EXPECT(del("/_meta/mqtt/share/t/g/leader"));
	/* A live broker consumes a fired will by deleting it. */
	EXPECT(!del("/_meta/mqtt/will-fire/t/c"));
	/* Nodes', brokers' and clients' keys. */
	EXPECT(!put("/_meta/nodes/broker/b1"));
	EXPECT(!put("/_meta/health/broker/b1"));
	EXPECT(!put("/_meta/decommission/storage/s1"));
	EXPECT(!put("/_meta/journal/requests/create/ns/s"));
	EXPECT(!put("/_meta/journal/offsets/ns/s/0000000000/s1"));
	EXPECT(!put("/_meta/journal/deleted/ns/s/0000000000/s1"));
	EXPECT(!put("/_meta/mqtt/sessions/t/c"));
	EXPECT(!put("/_meta/mqtt/presence/t/c"));
	EXPECT(!put("/_meta/mqtt/wills/t/c"));
	EXPECT(!put("/_meta/mqtt/subs/t/c/a%2Fb"));
	EXPECT(!put("/_meta/mqtt/share/t/g/members/b1"));
	EXPECT(!put("/_meta/mqtt/connectors/t/n"));
	EXPECT(!put("/_meta/mqtt/blacklist/t/x"));
	EXPECT(!put("/_meta/marker"));
	EXPECT(!put("foo"));
	/* Near misses: not the documented shape, so not the controllers'. */
	EXPECT(!put("/_meta/status"));
	EXPECT(!put("/_meta/statusx/a"));
	EXPECT(!put("/_meta/mqtt/share/t/leader"));
	EXPECT(!put("/_meta/mqtt/share/t/g/leader/x"));
	EXPECT(!put("/_meta/mqtt/share//g/leader"));
	EXPECT(!put("/_meta/mqtt/share/t/g/leaders"));
}

static void test_ranges(void)
{
	/* Whole key space, /_meta/ itself, and anything spanning an owned prefix. */
	EXPECT(del_range("\0", ""));
	EXPECT(del_range("/_meta/", "/_meta0"));
	EXPECT(del_range("/_meta/r", ""));
	EXPECT(del_range("/_meta/journal/", "/_meta/journal0"));
	EXPECT(del_range("/_meta/status/nodes/", "/_meta/status/nodes0"));
	EXPECT(del_range("/_meta/mqtt/will-timers/t/", "/_meta/mqtt/will-timers/t0"));
	/* Ranges among clients' keys only. */
	EXPECT(!del_range("/_meta/nodes/", "/_meta/nodes0"));
	EXPECT(!del_range("/_meta/mqtt/subs/t/c/", "/_meta/mqtt/subs/t/c0"));
	EXPECT(!del_range("/_meta/journal/requests/", "/_meta/journal/requests0"));
	EXPECT(!del_range("/_meta/mqtt/will-fire/", "/_meta/mqtt/will-fire0"));
	EXPECT(!del_range("a", "b"));
	EXPECT(!del_range("/_meta/status0", ""));     /* starts past status/ ... */
	EXPECT(del_range("/_meta/status.", "/_meta/status0")); /* ... ends inside it */
	EXPECT(!del_range("/_meta/statur", "/_meta/status/")); /* ends right at it */
	/* Share groups: a member range is the brokers'; the group's is not. */
	EXPECT(!del_range("/_meta/mqtt/share/t/g/members/", "/_meta/mqtt/share/t/g/members0"));
	EXPECT(!del_range("/_meta/mqtt/share/t/g/members/a", "/_meta/mqtt/share/t/g/members/b"));
	EXPECT(del_range("/_meta/mqtt/share/t/g/", "/_meta/mqtt/share/t/g0"));
	EXPECT(del_range("/_meta/mqtt/share/t/g/members/", "/_meta/mqtt/share/t/g/n"));
	EXPECT(del_range("/_meta/mqtt/share/t/g/members/", ""));
	EXPECT(del_range("/_meta/mqtt/share/", "/_meta/mqtt/share0"));
	/* A fired will may be deleted, not written, in a range too. */
	static const char k[] = "/_meta/mqtt/will-fire/t/";
	EXPECT(controllers_owned((const uint8_t *)k, strlen(k), (const uint8_t *)"/_meta/mqtt/will-fire/t0",
				 strlen(k), false));
}

int main(void)
{
	test_single_keys();
	test_ranges();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures != 0;
}

/*
 * controllers/owned.c — which keys under /_meta/ belong to the controllers
 * (docs/controllers.md, "Who may write"). A pure function of the key range:
 * core asks it for every client write, and refuses the write when it would
 * touch a controller-owned key.
 *
 * Controller-owned: status/, journal/shards/, journal/segments/,
 * mqtt/expiring/, mqtt/will-timers/, mqtt/connector-assign/,
 * mqtt/share/<tenant>/<group>/leader, and mqtt/will-fire/ for puts only (a
 * live broker consumes a fired will by deleting its key). Every other key
 * under /_meta/ (nodes, health, requests, offsets, sessions, ...) and every
 * key outside it is a client's.
 */
#include <string.h>

#include "controllers/controllers.h"

#define P(s) {s, sizeof(s) - 1}
static const struct {
	const char *p;
	size_t n;
} owned[] = {
	P("/_meta/status/"),	    P("/_meta/journal/shards/"),	  P("/_meta/journal/segments/"),
	P("/_meta/mqtt/expiring/"), P("/_meta/mqtt/will-timers/"), P("/_meta/mqtt/connector-assign/"),
};
static const char WILL_FIRE[] = "/_meta/mqtt/will-fire/";
static const char SHARE[] = "/_meta/mqtt/share/";

/* memcmp order of a[0..an) and b[0..bn), shorter first on a tie. */
static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c != 0 ? c : (an > bn) - (an < bn);
}

static bool has_prefix(const uint8_t *k, size_t kn, const char *p, size_t pn)
{
	return kn >= pn && memcmp(k, p, pn) == 0;
}

/* Whether [key, end) (end_len 0: key alone; end "\0": every key >= key)
 * meets the keys that start with p[0..pn). */
static bool meets_prefix(const uint8_t *key, size_t key_len, const uint8_t *end, size_t end_len,
			 const char *p, size_t pn)
{
	if (end_len == 0)
		return has_prefix(key, key_len, p, pn);
	/* The prefix's keys are [p, p with its last byte + 1); no byte of a
	 * /_meta/ prefix is 0xff, so that end is simple. */
	uint8_t pend[64];
	memcpy(pend, p, pn);
	pend[pn - 1]++;
	if (bytes_cmp(key, key_len, pend, pn) >= 0)
		return false; /* starts after the prefix's keys */
	bool to_inf = end_len == 1 && end[0] == 0;
	return to_inf || bytes_cmp(end, end_len, (const uint8_t *)p, pn) > 0;
}

/* mqtt/share/<tenant>/<group>/leader: exactly these three segments. */
static bool is_share_leader(const uint8_t *key, size_t key_len)
{
	const size_t sn = sizeof(SHARE) - 1;
	if (!has_prefix(key, key_len, SHARE, sn))
		return false;
	const uint8_t *p = key + sn, *e = key + key_len;
	for (int seg = 0; seg < 2; seg++) {
		const uint8_t *slash = memchr(p, '/', (size_t)(e - p));
		if (slash == NULL || slash == p)
			return false;
		p = slash + 1;
	}
	return (size_t)(e - p) == 6 && memcmp(p, "leader", 6) == 0;
}

/* A range that meets mqtt/share/ is a client's only when it stays inside
 * one group's members/ (it then cannot hold that group's leader key). */
static bool share_range_is_members(const uint8_t *key, size_t key_len, const uint8_t *end,
				   size_t end_len)
{
	const size_t sn = sizeof(SHARE) - 1;
	if (!has_prefix(key, key_len, SHARE, sn) || (end_len == 1 && end[0] == 0))
		return false;
	const uint8_t *p = key + sn, *e = key + key_len;
	for (int seg = 0; seg < 2; seg++) {
		const uint8_t *slash = memchr(p, '/', (size_t)(e - p));
		if (slash == NULL || slash == p)
			return false;
		p = slash + 1;
	}
	static const char M[] = "members/";
	const size_t mn = sizeof(M) - 1;
	if ((size_t)(e - p) < mn || memcmp(p, M, mn) != 0)
		return false;
	/* end must not pass the members/ prefix's end (".../members0"). */
	size_t pre = (size_t)(p - key) + mn;
	if (end_len > pre && memcmp(end, key, pre - 1) == 0 && end[pre - 1] == '/')
		return true; /* end inside members/ itself */
	return end_len == pre && memcmp(end, key, pre - 1) == 0 && end[pre - 1] == '0';
}

bool controllers_owned(const uint8_t *key, size_t key_len, const uint8_t *end, size_t end_len,
		       bool del)
{
	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
		if (meets_prefix(key, key_len, end, end_len, owned[i].p, owned[i].n))
			return true;
	if (!del && meets_prefix(key, key_len, end, end_len, WILL_FIRE, sizeof(WILL_FIRE) - 1))
		return true;
	if (end_len == 0)
		return is_share_leader(key, key_len);
	return meets_prefix(key, key_len, end, end_len, SHARE, sizeof(SHARE) - 1) &&
	       !share_range_is_members(key, key_len, end, end_len);
}

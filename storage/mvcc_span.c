/*
 * storage/mvcc_span.c — the bounds of the keys written since the watch hub
 * last looked (struct mvcc_span in mvcc.h).
 *
 * Each put and delete widens the span by at most two comparisons; a copy is
 * made only when a key becomes the new smallest or largest. The hub takes
 * the span after each applied batch, so a batch's first key sets both
 * bounds and random keys soon stop moving them.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/mvcc_internal.h"

static int set_bound(uint8_t **p, size_t *len, size_t *cap, const uint8_t *key, size_t key_len)
{
	if (key_len > *cap) {
		uint8_t *n = realloc(*p, key_len);
		if (n == NULL)
			return DB_NOMEM;
		*p = n;
		*cap = key_len;
	}
	memcpy(*p, key, key_len);
	*len = key_len;
	return DB_OK;
}

int mvcc_span_add(struct mvcc_span *sp, int64_t rev, const uint8_t *key, size_t key_len)
{
	int rv = DB_OK;
	if (!sp->any) {
		sp->any = 1;
		sp->first_rev = rev;
		if (!sp->all) {
			rv = set_bound(&sp->lo, &sp->lo_len, &sp->lo_cap, key, key_len);
			if (rv == DB_OK)
				rv = set_bound(&sp->hi, &sp->hi_len, &sp->hi_cap, key, key_len);
		}
	} else {
		if (rev < sp->first_rev)
			sp->first_rev = rev;
		if (sp->all)
			return DB_OK;
		if (mvcc_key_cmp(key, key_len, sp->lo, sp->lo_len) < 0)
			rv = set_bound(&sp->lo, &sp->lo_len, &sp->lo_cap, key, key_len);
		else if (mvcc_key_cmp(key, key_len, sp->hi, sp->hi_len) > 0)
			rv = set_bound(&sp->hi, &sp->hi_len, &sp->hi_cap, key, key_len);
	}
	if (rv != DB_OK)
		sp->all = 1; /* unbounded: whoever asks must assume any key */
	return rv;
}

int mvcc_span_meets(const struct mvcc_span *written, const struct mvcc_span *want, int up_open)
{
	if (!written->any || !want->any)
		return 0;
	if (written->all || want->all)
		return 1;
	if (mvcc_key_cmp(written->hi, written->hi_len, want->lo, want->lo_len) < 0)
		return 0;
	return up_open || mvcc_key_cmp(written->lo, written->lo_len, want->hi, want->hi_len) < 0;
}

void mvcc_span_take(struct mvcc *m, struct mvcc_span *out)
{
	pthread_mutex_lock(&m->apply_mu);
	struct mvcc_span taken = m->written;
	/* The caller's buffers come back for the next writes. */
	m->written = (struct mvcc_span){
		.lo = out->lo, .hi = out->hi, .lo_cap = out->lo_cap, .hi_cap = out->hi_cap};
	*out = taken;
	pthread_mutex_unlock(&m->apply_mu);
}

void mvcc_span_free(struct mvcc_span *sp)
{
	free(sp->lo);
	free(sp->hi);
	*sp = (struct mvcc_span){0};
}

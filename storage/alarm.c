/*
 * storage/alarm.c — the alarm set as one meta record: "alarms" ->
 * (BE64 member, BE32 type) * n.
 */
#include <string.h>

#include "storage/alarm.h"
#include "storage/codec_internal.h"
#include "storage/db_internal.h"

#define ALARM_META_KEY "alarms"
#define ALARM_REC_BYTES 12

int alarm_store_save(struct db_session *s, const struct alarm_rec *recs, size_t n)
{
	if (!s->in_txn)
		return DB_INVALID;
	struct db_buf *b = &s->buf[0];
	int rv = db_buf_reserve(b, n * ALARM_REC_BYTES + 1);
	if (rv != DB_OK)
		return rv;
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = b->p + i * ALARM_REC_BYTES;
		be64_put(p, recs[i].member);
		p[8] = (uint8_t)(recs[i].type >> 24);
		p[9] = (uint8_t)(recs[i].type >> 16);
		p[10] = (uint8_t)(recs[i].type >> 8);
		p[11] = (uint8_t)recs[i].type;
	}
	WT_CURSOR *c = db_cursor(s, DB_TBL_META);
	WT_ITEM k = {.data = ALARM_META_KEY, .size = strlen(ALARM_META_KEY)};
	WT_ITEM v = {.data = b->p, .size = n * ALARM_REC_BYTES};
	c->set_key(c, &k);
	c->set_value(c, &v);
	int wrv = c->insert(c);
	c->reset(c);
	return db_wt_error(wrv);
}

int alarm_store_load(struct db_session *s, struct alarm_rec *out, size_t max, size_t *n)
{
	*n = 0;
	int own = 0;
	int rv = db_read_begin(s, &own);
	if (rv != DB_OK)
		return rv;
	WT_CURSOR *c = db_cursor(s, DB_TBL_META);
	WT_ITEM k = {.data = ALARM_META_KEY, .size = strlen(ALARM_META_KEY)}, v;
	c->set_key(c, &k);
	int wrv = c->search(c);
	if (wrv == 0)
		wrv = c->get_value(c, &v);
	if (wrv == WT_NOTFOUND) {
		rv = DB_OK;
	} else if (wrv != 0) {
		rv = db_wt_error(wrv);
	} else if (v.size % ALARM_REC_BYTES != 0) {
		rv = DB_CORRUPT;
	} else if (v.size / ALARM_REC_BYTES > max) {
		rv = DB_NOMEM;
	} else {
		const uint8_t *p = v.data;
		for (size_t i = 0; i < v.size / ALARM_REC_BYTES; i++, p += ALARM_REC_BYTES) {
			out[i].member = be64_get(p);
			out[i].type = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 |
				      (uint32_t)p[10] << 8 | p[11];
		}
		*n = v.size / ALARM_REC_BYTES;
	}
	c->reset(c);
	db_read_end(s, own);
	return rv;
}

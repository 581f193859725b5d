/*
 * storage/auth.c — the `auth` table: kind byte + name -> opaque record.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/auth.h"
#include "storage/db_internal.h"

/* Names are short (etcd puts no limit on them, but they travel in every
 * request): the key is built in a session buffer, never on the stack. */
static int make_key(struct db_session *s, int kind, const char *name, size_t name_len,
		    WT_ITEM *key)
{
	struct db_buf *b = &s->buf[0];
	if (db_buf_reserve(b, name_len + 1) != DB_OK)
		return DB_NOMEM;
	b->p[0] = (uint8_t)kind;
	if (name_len > 0)
		memcpy(b->p + 1, name, name_len);
	key->data = b->p;
	key->size = name_len + 1;
	return DB_OK;
}

int auth_store_put(struct db_session *s, int kind, const char *name, size_t name_len,
		   const uint8_t *val, size_t val_len)
{
	if (!s->in_txn)
		return DB_INVALID;
	WT_ITEM key, v = {.data = val, .size = val_len};
	int rv = make_key(s, kind, name, name_len, &key);
	if (rv != DB_OK)
		return rv;
	WT_CURSOR *c = db_cursor(s, DB_TBL_AUTH);
	c->set_key(c, &key);
	c->set_value(c, &v);
	rv = c->insert(c);
	c->reset(c);
	return db_wt_error(rv);
}

int auth_store_delete(struct db_session *s, int kind, const char *name, size_t name_len)
{
	if (!s->in_txn)
		return DB_INVALID;
	WT_ITEM key;
	int rv = make_key(s, kind, name, name_len, &key);
	if (rv != DB_OK)
		return rv;
	WT_CURSOR *c = db_cursor(s, DB_TBL_AUTH);
	c->set_key(c, &key);
	rv = c->remove(c); /* overwrite cursor: absent is fine */
	c->reset(c);
	return db_wt_error(rv);
}

int auth_store_load(struct db_session *s, auth_store_fn fn, void *arg)
{
	int own, rv;
	if ((rv = db_read_begin(s, &own)) != DB_OK)
		return rv;
	WT_CURSOR *c = db_cursor(s, DB_TBL_AUTH);
	while ((rv = c->next(c)) == 0) {
		WT_ITEM k, v;
		if ((rv = c->get_key(c, &k)) != 0 || (rv = c->get_value(c, &v)) != 0)
			break;
		if (k.size < 1) {
			rv = DB_CORRUPT;
			goto out;
		}
		const uint8_t *kp = k.data;
		int stop = fn(arg, kp[0], (const char *)kp + 1, k.size - 1, v.data, v.size);
		if (stop) {
			rv = stop;
			goto out;
		}
	}
	rv = rv == WT_NOTFOUND ? DB_OK : db_wt_error(rv);
out:
	c->reset(c);
	db_read_end(s, own);
	return rv;
}

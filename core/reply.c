/*
 * core/reply.c — building response messages in a reply's arena.
 */
#include <stdlib.h>

#include "core/core_internal.h"

struct reply_list {
	struct reply_list *next;
	struct mvcc_kvlist l;
};

struct reply *reply_new(void)
{
	struct reply *r = calloc(1, sizeof(*r));
	if (r != NULL)
		arena_init(&r->arena);
	return r;
}

void core_reply_free(struct core_reply *pub)
{
	if (pub == NULL)
		return;
	struct reply *r = (struct reply *)pub;
	struct reply_list *l = r->lists;
	while (l != NULL) {
		struct reply_list *next = l->next;
		mvcc_kvlist_free(&l->l);
		free(l);
		l = next;
	}
	arena_free(&r->arena);
	free(r);
}

struct mvcc_kvlist *reply_kvlist(struct reply *r)
{
	struct reply_list *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	mvcc_kvlist_init(&l->l);
	l->next = r->lists;
	r->lists = l;
	return &l->l;
}

Etcdserverpb__ResponseHeader *reply_header(struct core *c, struct reply *r, int64_t rev)
{
	Etcdserverpb__ResponseHeader *h = arena_alloc(&r->arena, sizeof(*h));
	if (h == NULL)
		return NULL;
	etcdserverpb__response_header__init(h);
	core_fill_header(c, h, rev);
	return h;
}

Mvccpb__KeyValue *reply_kv(struct reply *r, const struct mvcc_kv *kv)
{
	Mvccpb__KeyValue *m = arena_alloc(&r->arena, sizeof(*m));
	if (m == NULL)
		return NULL;
	mvccpb__key_value__init(m);
	/* protobuf-c only reads these when packing: borrowing is safe. */
	m->key.data = (uint8_t *)kv->key;
	m->key.len = kv->key_len;
	m->value.data = (uint8_t *)kv->value;
	m->value.len = kv->value_len;
	m->create_revision = kv->create_revision;
	m->mod_revision = kv->mod_revision;
	m->version = kv->version;
	m->lease = kv->lease;
	return m;
}

void reply_done(struct reply *r, int err, ProtobufCMessage *msg, core_done_fn cb, void *arg)
{
	r->pub.err = err;
	r->pub.msg = err == CORE_OK ? msg : NULL;
	cb(arg, &r->pub);
}

void reply_fail(core_done_fn cb, void *arg, int err)
{
	struct reply *r = reply_new();
	if (r == NULL) {
		static struct core_reply oom = {CORE_ENOMEM, NULL};
		cb(arg, &oom);
		return;
	}
	reply_done(r, err, NULL, cb, arg);
}

void reply_drop(void *arg, struct core_reply *reply)
{
	(void)arg;
	core_reply_free(reply);
}

/*
 * core/apply.c — applying one log entry to the key space.
 *
 * Runs on the writer thread inside the batch's WiredTiger transaction. Each
 * request first checks everything that can refuse it, so a refused request
 * changes nothing and the rest of the batch goes on.
 */
#include <stdio.h>
#include <time.h>

#include "core/alarm_internal.h"
#include "core/autocompact.h" /* ac_format_duration: Go's duration text */
#include "core/auth_internal.h"
#include "core/core_internal.h"
#include "core/lease_internal.h"

/* The key's current key-value appended to out, if it exists. */
static int current_kv(struct core *c, struct db_session *s, const ProtobufCBinaryData *key,
		      struct mvcc_kvlist *out, bool *found)
{
	struct mvcc_range_req q = {.key = key->data, .key_len = key->len};
	struct mvcc_range_res res = {0};
	int rv = mvcc_range(c->mvcc, s, &q, &res);
	if (rv != DB_OK) {
		mvcc_kvlist_free(&res.kvs);
		return core_db_err(rv);
	}
	*found = res.kvs.n > 0;
	if (*found && out != NULL)
		rv = mvcc_kvlist_push(out, &res.kvs.kvs[0]);
	mvcc_kvlist_free(&res.kvs);
	return rv == DB_OK ? CORE_OK : CORE_ENOMEM;
}

int check_put(struct core *c, struct db_session *s, const Etcdserverpb__PutRequest *p)
{
	if (p->ignore_value || p->ignore_lease) {
		bool found = false;
		int rv = current_kv(c, s, &p->key, NULL, &found);
		if (rv != CORE_OK)
			return rv;
		if (!found)
			return CORE_EKEY_NOT_FOUND;
	}
	if (!p->ignore_lease && p->lease != 0 && !core_lease_exists(c, p->lease))
		return CORE_ELEASE_NOT_FOUND;
	return CORE_OK;
}

int apply_put(struct core *c, struct db_session *s, struct reply *r, const Etcdserverpb__PutRequest *p,
	      Etcdserverpb__PutResponse **out)
{
	Etcdserverpb__PutResponse *resp = arena_alloc(&r->arena, sizeof(*resp));
	struct mvcc_kvlist *prev = reply_kvlist(r);
	if (resp == NULL || prev == NULL)
		return CORE_ENOMEM;
	etcdserverpb__put_response__init(resp);

	const uint8_t *val = p->value.data;
	size_t val_len = p->value.len;
	int64_t lease = p->lease;
	int rv;
	if (p->ignore_value || p->ignore_lease) {
		bool found = false;
		rv = current_kv(c, s, &p->key, prev, &found);
		if (rv != CORE_OK)
			return rv;
		if (!found)
			return CORE_EKEY_NOT_FOUND;
		if (p->ignore_value) {
			val = prev->kvs[0].value;
			val_len = prev->kvs[0].value_len;
		}
		if (p->ignore_lease)
			lease = prev->kvs[0].lease;
	}
	if (!p->ignore_lease && lease != 0 && !core_lease_exists(c, lease))
		return CORE_ELEASE_NOT_FOUND;

	bool have_prev = prev->n > 0;
	rv = mvcc_put(c->mvcc, s, p->key.data, p->key.len, val, val_len, lease,
		      (have_prev || !p->prev_kv) ? NULL : prev, NULL);
	if (rv != DB_OK)
		return core_db_err(rv);
	if (p->prev_kv && prev->n > 0) {
		resp->prev_kv = reply_kv(r, &prev->kvs[0]);
		if (resp->prev_kv == NULL)
			return CORE_ENOMEM;
	}
	resp->header = arena_alloc(&r->arena, sizeof(*resp->header));
	if (resp->header == NULL)
		return CORE_ENOMEM;
	etcdserverpb__response_header__init(resp->header);
	*out = resp;
	return CORE_OK;
}

int apply_delete(struct core *c, struct db_session *s, struct reply *r,
		 const Etcdserverpb__DeleteRangeRequest *d, Etcdserverpb__DeleteRangeResponse **out)
{
	Etcdserverpb__DeleteRangeResponse *resp = arena_alloc(&r->arena, sizeof(*resp));
	struct mvcc_kvlist *prev = d->prev_kv ? reply_kvlist(r) : NULL;
	if (resp == NULL || (d->prev_kv && prev == NULL))
		return CORE_ENOMEM;
	etcdserverpb__delete_range_response__init(resp);
	int64_t deleted = 0;
	int rv = mvcc_delete_range(c->mvcc, s, d->key.data, d->key.len, d->range_end.data,
				   d->range_end.len, &deleted, prev);
	if (rv != DB_OK)
		return core_db_err(rv);
	resp->deleted = deleted;
	if (prev != NULL && prev->n > 0) {
		resp->prev_kvs = arena_alloc(&r->arena, prev->n * sizeof(*resp->prev_kvs));
		if (resp->prev_kvs == NULL)
			return CORE_ENOMEM;
		for (size_t i = 0; i < prev->n; i++)
			if ((resp->prev_kvs[i] = reply_kv(r, &prev->kvs[i])) == NULL)
				return CORE_ENOMEM;
		resp->n_prev_kvs = prev->n;
	}
	resp->header = arena_alloc(&r->arena, sizeof(*resp->header));
	if (resp->header == NULL)
		return CORE_ENOMEM;
	etcdserverpb__response_header__init(resp->header);
	*out = resp;
	return CORE_OK;
}

static int apply_compaction(struct core *c, struct db_session *s, struct reply *r,
			    const Etcdserverpb__CompactionRequest *q, ProtobufCMessage **msg,
			    int64_t *compact_rev)
{
	int rv = mvcc_compact(c->mvcc, s, q->revision);
	if (rv != DB_OK)
		return core_db_err(rv);
	Etcdserverpb__CompactionResponse *resp = arena_alloc(&r->arena, sizeof(*resp));
	if (resp == NULL || (resp->header = reply_header(c, r, 0)) == NULL)
		return CORE_ENOMEM;
	Etcdserverpb__ResponseHeader *h = resp->header;
	etcdserverpb__compaction_response__init(resp);
	resp->header = h;
	*compact_rev = q->revision;
	*msg = &resp->base;
	return CORE_OK;
}

static int apply_one(struct core *c, struct db_session *s, struct reply *r,
		     const Metadpb__InternalRequest *req, ProtobufCMessage **msg, int64_t *compact_rev)
{
	int rv = auth_apply_check(c, s, req); /* the auth store or a lease may have changed */
	if (rv == CORE_OK)
		rv = alarm_apply_check(c, req); /* NOSPACE or CORRUPT refuse writes */
	if (rv != CORE_OK)
		return rv;
	switch (req->request_case) {
	case METADPB__INTERNAL_REQUEST__REQUEST_PUT: {
		/* ETCD-COMPAT: a lone Put checks its lease before the key that
		 * ignore_value/ignore_lease need (etcd's applier; in a Txn the
		 * key comes first, see check_put). */
		if (req->put->lease != 0 && !core_lease_exists(c, req->put->lease))
			return CORE_ELEASE_NOT_FOUND;
		Etcdserverpb__PutResponse *resp = NULL;
		mvcc_req_begin(c->mvcc, s);
		rv = apply_put(c, s, r, req->put, &resp);
		int64_t rev = mvcc_req_end(c->mvcc, s);
		if (rv == CORE_OK) {
			core_fill_header(c, resp->header, rev);
			*msg = &resp->base;
		}
		return rv;
	}
	case METADPB__INTERNAL_REQUEST__REQUEST_DELETE_RANGE: {
		Etcdserverpb__DeleteRangeResponse *resp = NULL;
		if (reserved_guarded(c, req) &&
		    (rv = reserved_check_delete(c, s, req->delete_range)) != CORE_OK)
			return rv;
		mvcc_req_begin(c->mvcc, s);
		rv = apply_delete(c, s, r, req->delete_range, &resp);
		int64_t rev = mvcc_req_end(c->mvcc, s);
		if (rv == CORE_OK) {
			core_fill_header(c, resp->header, rev);
			*msg = &resp->base;
		}
		return rv;
	}
	case METADPB__INTERNAL_REQUEST__REQUEST_TXN: {
		Etcdserverpb__TxnResponse *resp = NULL;
		rv = apply_txn(c, s, r, req->txn, true, reserved_guarded(c, req), &resp);
		if (rv == CORE_OK)
			*msg = &resp->base;
		return rv;
	}
	case METADPB__INTERNAL_REQUEST__REQUEST_COMPACTION:
		return apply_compaction(c, s, r, req->compaction, msg, compact_rev);
	case METADPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT:
		return apply_lease_grant(c, s, r, req->lease_grant, msg);
	case METADPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE:
		return apply_lease_revoke(c, s, r, req->lease_revoke, msg);
	case METADPB__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT:
		return apply_lease_checkpoint(c, req->lease_checkpoint);
	case METADPB__INTERNAL_REQUEST__REQUEST_ALARM:
		return apply_alarm(c, s, r, req->alarm, msg);
	default: /* the auth store's entries, or CORE_EINTERNAL */
		return auth_apply(c, s, r, req, msg);
	}
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t warn_ns(const struct core *c)
{
	return c->cfg.warning_apply_ns > 0 ? c->cfg.warning_apply_ns : 100 * 1000000;
}

/* ETCD-COMPAT: etcd warns of a request whose apply took longer than
 * --experimental-warning-apply-duration (100 ms), in these words. The
 * request is named by its kind and size, not its keys and values. */
static void warn_slow(struct core *c, const Metadpb__InternalRequest *req, int64_t took_ns,
		      int err)
{
	char took[32], expected[32], what[96];
	ac_format_duration(took_ns, took, sizeof(took));
	ac_format_duration(warn_ns(c), expected, sizeof(expected));
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(req->base.descriptor, req->request_case);
	snprintf(what, sizeof(what), "%s size:%zu", f ? f->name : "?",
		 protobuf_c_message_get_packed_size(&req->base));
	core_log_kv("warn", "apply request took too long", "{s:s,s:s,s:s,s:s,s:s}", "took", took,
		    "expected-duration", expected, "prefix", "", "request", what, "response",
		    err == CORE_OK ? "ok" : core_strerror(err));
}

int apply_request(struct core *c, struct db_session *s, struct reply *r,
		  const Metadpb__InternalRequest *req, ProtobufCMessage **msg, int64_t *compact_rev)
{
	int64_t t0 = mono_ns();
	int rv = apply_one(c, s, r, req, msg, compact_rev);
	int64_t took = mono_ns() - t0;
	if (took > warn_ns(c))
		warn_slow(c, req, took, rv);
	return rv;
}

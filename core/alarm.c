/*
 * core/alarm.c — etcd's alarm store: the (member, type) set, changed only
 * by applying Alarm entries from the log, persisted in meta with the applied
 * index (storage/alarm.c), checked by apply before each entry.
 *
 * ETCD-COMPAT: etcd 3.5's applier. ACTIVATE of type NONE changes nothing and
 * answers no alarm; ACTIVATE of an active alarm answers it again; DEACTIVATE
 * of an absent one answers none; GET with a type lists that type only. An
 * unknown action answers an empty response (etcd 3.4 crashes on it); an
 * unknown alarm type is kept and listed, as etcd 3.4 keeps it (3.5 panics).
 * Alarm needs no permission (etcd checks none).
 */
#include <stdlib.h>
#include <string.h>

#include "core/alarm_internal.h"
#include "storage/alarm.h"

#define ALARMS_MAX 1024 /* a bound on what clients may pile up */

struct core_alarms {
	pthread_mutex_t mu; /* recs, n: the writer changes, readers copy */
	struct alarm_rec recs[ALARMS_MAX];
	size_t n;
	_Atomic unsigned mask;   /* bit t: an alarm of type t (< 32) is active */
	_Atomic size_t count;    /* n, for lock-free "any alarm?" */
	_Atomic bool raising;    /* a NOSPACE proposal is on its way */
};

static unsigned mask_of(const struct core_alarms *a)
{
	unsigned m = 0;
	for (size_t i = 0; i < a->n; i++)
		if (a->recs[i].type < 32)
			m |= 1u << a->recs[i].type;
	return m;
}

static int rec_cmp(const void *x, const void *y)
{
	const struct alarm_rec *a = x, *b = y;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	return a->member < b->member ? -1 : a->member > b->member;
}

int alarm_open(struct core *c)
{
	struct core_alarms *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return DB_NOMEM;
	pthread_mutex_init(&a->mu, NULL);
	int rv = alarm_store_load(c->wsession, a->recs, ALARMS_MAX, &a->n);
	if (rv != DB_OK) {
		pthread_mutex_destroy(&a->mu);
		free(a);
		return rv;
	}
	atomic_init(&a->mask, mask_of(a));
	atomic_init(&a->count, a->n);
	atomic_init(&a->raising, false);
	c->alarms = a;
	for (size_t i = 0; i < a->n; i++)
		core_log("warn", "alarm active at start: memberID %llx alarm %s",
			 (unsigned long long)a->recs[i].member,
			 core_alarm_name((int)a->recs[i].type) ? core_alarm_name((int)a->recs[i].type)
								: "unknown");
	return DB_OK;
}

int alarm_reload(struct core *c)
{
	struct core_alarms *a = c->alarms;
	if (a == NULL)
		return DB_OK;
	struct alarm_rec *recs = malloc(ALARMS_MAX * sizeof(*recs));
	if (recs == NULL)
		return DB_NOMEM;
	size_t n = 0;
	int rv = alarm_store_load(c->wsession, recs, ALARMS_MAX, &n);
	if (rv == DB_OK) {
		pthread_mutex_lock(&a->mu);
		memcpy(a->recs, recs, n * sizeof(*recs));
		a->n = n;
		qsort(a->recs, a->n, sizeof(a->recs[0]), rec_cmp);
		atomic_store(&a->mask, mask_of(a));
		atomic_store(&a->count, a->n);
		pthread_mutex_unlock(&a->mu);
	}
	free(recs);
	return rv;
}

void alarm_free(struct core *c)
{
	if (c->alarms == NULL)
		return;
	pthread_mutex_destroy(&c->alarms->mu);
	free(c->alarms);
	c->alarms = NULL;
}

const char *core_alarm_name(int type)
{
	switch (type) {
	case ETCDSERVERPB__ALARM_TYPE__NONE:
		return "NONE";
	case ETCDSERVERPB__ALARM_TYPE__NOSPACE:
		return "NOSPACE";
	case ETCDSERVERPB__ALARM_TYPE__CORRUPT:
		return "CORRUPT";
	default:
		return NULL;
	}
}

bool core_alarm_active(struct core *c, int type)
{
	if (c->alarms == NULL)
		return false;
	if (type == 0)
		return atomic_load(&c->alarms->count) > 0;
	if (type < 0 || type >= 32)
		return false;
	return (atomic_load(&c->alarms->mask) >> type) & 1u;
}

size_t core_alarms(struct core *c, struct core_alarm *out, size_t max)
{
	struct core_alarms *a = c->alarms;
	if (a == NULL)
		return 0;
	pthread_mutex_lock(&a->mu);
	size_t n = a->n;
	for (size_t i = 0; i < n && i < max; i++) {
		out[i].member = a->recs[i].member;
		out[i].type = (int)a->recs[i].type;
	}
	pthread_mutex_unlock(&a->mu);
	return n;
}

/* etcd's quota cost of a Txn is that of its top-level puts only. */
static bool txn_has_put(const Etcdserverpb__TxnRequest *t)
{
	for (size_t i = 0; i < t->n_success; i++)
		if (t->success[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT)
			return true;
	for (size_t i = 0; i < t->n_failure; i++)
		if (t->failure[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT)
			return true;
	return false;
}

int alarm_apply_check(struct core *c, const Metadpb__InternalRequest *req)
{
	unsigned m = c->alarms ? atomic_load(&c->alarms->mask) : 0;
	if (m == 0)
		return CORE_OK;
	if (m & (1u << ETCDSERVERPB__ALARM_TYPE__CORRUPT)) {
		switch (req->request_case) {
		case METADPB__INTERNAL_REQUEST__REQUEST_PUT:
		case METADPB__INTERNAL_REQUEST__REQUEST_DELETE_RANGE:
		case METADPB__INTERNAL_REQUEST__REQUEST_TXN:
		case METADPB__INTERNAL_REQUEST__REQUEST_COMPACTION:
		case METADPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT:
		case METADPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE:
			return CORE_ECORRUPT;
		default:
			break;
		}
	}
	if (m & (1u << ETCDSERVERPB__ALARM_TYPE__NOSPACE)) {
		switch (req->request_case) {
		case METADPB__INTERNAL_REQUEST__REQUEST_PUT:
		case METADPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT:
			return CORE_ENOSPACE;
		case METADPB__INTERNAL_REQUEST__REQUEST_TXN:
			return txn_has_put(req->txn) ? CORE_ENOSPACE : CORE_OK;
		default:
			break;
		}
	}
	return CORE_OK;
}

static size_t find(const struct core_alarms *a, uint64_t member, uint32_t type)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->recs[i].member == member && a->recs[i].type == type)
			return i;
	return SIZE_MAX;
}

static int add_member(struct reply *r, Etcdserverpb__AlarmResponse *resp, uint64_t member,
		      uint32_t type, size_t cap)
{
	if (resp->alarms == NULL) {
		resp->alarms = arena_alloc(&r->arena, (cap ? cap : 1) * sizeof(*resp->alarms));
		if (resp->alarms == NULL)
			return CORE_ENOMEM;
	}
	Etcdserverpb__AlarmMember *m = arena_alloc(&r->arena, sizeof(*m));
	if (m == NULL)
		return CORE_ENOMEM;
	etcdserverpb__alarm_member__init(m);
	m->memberid = member;
	m->alarm = (Etcdserverpb__AlarmType)type;
	resp->alarms[resp->n_alarms++] = m;
	return CORE_OK;
}

/* Store the set and publish it; on failure the set is as before. */
static int commit_set(struct core *c, struct db_session *s, const struct alarm_rec *recs, size_t n)
{
	struct core_alarms *a = c->alarms;
	int rv = alarm_store_save(s, recs, n);
	if (rv != DB_OK)
		return core_db_err(rv);
	pthread_mutex_lock(&a->mu);
	if (recs != a->recs)
		memcpy(a->recs, recs, n * sizeof(*recs));
	a->n = n;
	qsort(a->recs, a->n, sizeof(a->recs[0]), rec_cmp);
	atomic_store(&a->mask, mask_of(a));
	atomic_store(&a->count, a->n);
	pthread_mutex_unlock(&a->mu);
	return CORE_OK;
}

int apply_alarm(struct core *c, struct db_session *s, struct reply *r,
		const Etcdserverpb__AlarmRequest *q, ProtobufCMessage **msg)
{
	struct core_alarms *a = c->alarms;
	Etcdserverpb__AlarmResponse *resp = arena_alloc(&r->arena, sizeof(*resp));
	if (resp == NULL)
		return CORE_ENOMEM;
	etcdserverpb__alarm_response__init(resp);
	uint32_t type = (uint32_t)q->alarm;
	int err = CORE_OK;
	/* Only the writer changes the set: reading it here needs no lock. */
	switch (q->action) {
	case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET:
		for (size_t i = 0; i < a->n && err == CORE_OK; i++)
			if (type == 0 || a->recs[i].type == type)
				err = add_member(r, resp, a->recs[i].member, a->recs[i].type, a->n);
		break;
	case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE:
		if (type == 0)
			break;
		if (find(a, q->memberid, type) == SIZE_MAX) {
			if (a->n == ALARMS_MAX)
				return CORE_ENOMEM;
			struct alarm_rec *next = malloc((a->n + 1) * sizeof(*next));
			if (next == NULL)
				return CORE_ENOMEM;
			memcpy(next, a->recs, a->n * sizeof(*next));
			next[a->n] = (struct alarm_rec){q->memberid, type};
			err = commit_set(c, s, next, a->n + 1);
			free(next);
			if (err != CORE_OK)
				return err;
			core_log("warn", "alarm raised: memberID %llx alarm %s",
				 (unsigned long long)q->memberid,
				 core_alarm_name((int)type) ? core_alarm_name((int)type) : "unknown");
		}
		err = add_member(r, resp, q->memberid, type, 1);
		break;
	case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE: {
		size_t at = find(a, q->memberid, type);
		if (at == SIZE_MAX)
			break;
		struct alarm_rec *next = malloc((a->n ? a->n : 1) * sizeof(*next));
		if (next == NULL)
			return CORE_ENOMEM;
		size_t n = 0;
		for (size_t i = 0; i < a->n; i++)
			if (i != at)
				next[n++] = a->recs[i];
		err = commit_set(c, s, next, n);
		free(next);
		if (err != CORE_OK)
			return err;
		core_log("info", "alarm disarmed: memberID %llx alarm %s",
			 (unsigned long long)q->memberid,
			 core_alarm_name((int)type) ? core_alarm_name((int)type) : "unknown");
		err = add_member(r, resp, q->memberid, type, 1);
		break;
	}
	default:
		break;
	}
	if (err != CORE_OK)
		return err;
	/* ETCD-COMPAT: etcd 3.5 fills the header (the current revision);
	 * 3.4 sent none. */
	if ((resp->header = reply_header(c, r, 0)) == NULL)
		return CORE_ENOMEM;
	*msg = &resp->base;
	return CORE_OK;
}

void core_alarm(struct core *c, const Etcdserverpb__AlarmRequest *req, core_done_fn cb, void *arg)
{
	Metadpb__InternalRequest ir = METADPB__INTERNAL_REQUEST__INIT;
	ir.request_case = METADPB__INTERNAL_REQUEST__REQUEST_ALARM;
	ir.alarm = (Etcdserverpb__AlarmRequest *)req;
	writer_submit(c, &ir, cb, arg);
}

static void raised(void *arg, struct core_reply *reply)
{
	struct core *c = arg;
	atomic_store(&c->alarms->raising, false);
	core_reply_free(reply);
}

void alarm_raise_nospace(struct core *c)
{
	if (c->alarms == NULL || core_alarm_active(c, ETCDSERVERPB__ALARM_TYPE__NOSPACE))
		return;
	if (atomic_exchange(&c->alarms->raising, true))
		return;
	core_log("warn", "database space exceeded (quota %lld bytes): raising alarm NOSPACE",
		 (long long)c->quota);
	Etcdserverpb__AlarmRequest q = ETCDSERVERPB__ALARM_REQUEST__INIT;
	q.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
	q.memberid = c->member_id;
	q.alarm = ETCDSERVERPB__ALARM_TYPE__NOSPACE;
	core_alarm(c, &q, raised, c);
}

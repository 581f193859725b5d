/*
 * core/core.c — opening the node, its identity, and the request entry points.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/autocompact.h"
#include "core/core_internal.h"
#include "core/alarm_internal.h"
#include "core/auth_internal.h"
#include "core/lease_internal.h"
#include "core/peer.h"
#include "core/snapshot.h"
#include "storage/raftlog.h"

#define DEFAULT_QUOTA (2LL << 30) /* etcd's default backend quota: 2 GiB */

static const struct {
	int code;
	const char *msg;
} errtab[] = {
	{0, ""},
#define CORE_ROW_(name, code, msg) {code, msg},
	CORE_ERRORS(CORE_ROW_)
#undef CORE_ROW_
};

const char *core_strerror(int err)
{
	if (err < 0 || err >= CORE_ERR_COUNT_)
		return "etcdserver: unknown error";
	return errtab[err].msg;
}

int core_grpc_code(int err)
{
	if (err < 0 || err >= CORE_ERR_COUNT_)
		return CORE_GRPC_UNKNOWN;
	return errtab[err].code;
}

int core_db_err(int rv)
{
	switch (rv) {
	case DB_OK:
		return CORE_OK;
	case DB_COMPACTED:
		return CORE_ECOMPACTED;
	case DB_FUTURE_REV:
		return CORE_EFUTURE_REV;
	case DB_NOMEM:
		return CORE_ENOMEM;
	default:
		return CORE_EINTERNAL;
	}
}

static char *keep(struct core *c, const char *s)
{
	char *d = strdup(s ? s : "");
	char **v = realloc(c->strings, (c->n_strings + 1) * sizeof(*v));
	if (d == NULL || v == NULL) {
		free(d);
		if (v)
			c->strings = v;
		return NULL;
	}
	c->strings = v;
	c->strings[c->n_strings++] = d;
	return d;
}

static int copy_urls(struct core *c, const char *const *in, size_t n, const char *const **out)
{
	const char **v = calloc(n ? n : 1, sizeof(*v));
	if (v == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((v[i] = keep(c, in[i])) == NULL) {
			free(v);
			return -1;
		}
	*out = v;
	return 0;
}

static int copy_config(struct core *c, const struct core_config *cfg)
{
	c->cfg = *cfg;
	c->cfg.name = keep(c, cfg->name);
	c->cfg.data_dir = keep(c, cfg->data_dir);
	c->cfg.wal_dir = cfg->wal_dir ? keep(c, cfg->wal_dir) : NULL;
	c->cfg.cluster_token = keep(c, cfg->cluster_token ? cfg->cluster_token : "etcd-cluster");
	c->cfg.initial_cluster_state =
		keep(c, cfg->initial_cluster_state ? cfg->initial_cluster_state : "new");
	if (!c->cfg.name || !c->cfg.data_dir || !c->cfg.cluster_token || !c->cfg.initial_cluster_state)
		return -1;
	if (copy_urls(c, cfg->client_urls, cfg->n_client_urls, &c->cfg.client_urls) ||
	    copy_urls(c, cfg->peer_urls, cfg->n_peer_urls, &c->cfg.peer_urls) ||
	    copy_urls(c, cfg->listen_peer_urls, cfg->n_listen_peer_urls, &c->cfg.listen_peer_urls))
		return -1;
	if (cfg->initial_cluster != NULL) {
		if ((c->cfg.initial_cluster = keep(c, cfg->initial_cluster)) == NULL)
			return -1;
	} else {
		/* etcd's default: this member alone, at its advertised peer URLs. */
		size_t len = 1;
		for (size_t i = 0; i < c->cfg.n_peer_urls; i++)
			len += strlen(c->cfg.name) + strlen(c->cfg.peer_urls[i]) + 2;
		char *ic = calloc(1, len);
		if (ic == NULL)
			return -1;
		for (size_t i = 0; i < c->cfg.n_peer_urls; i++)
			snprintf(ic + strlen(ic), len - strlen(ic), "%s%s=%s", i ? "," : "",
				 c->cfg.name, c->cfg.peer_urls[i]);
		c->cfg.initial_cluster = keep(c, ic);
		free(ic);
		if (c->cfg.initial_cluster == NULL)
			return -1;
	}
	return 0;
}

void core_db_log(const char *level, const char *msg)
{
	core_log(level, "wiredtiger: %s", msg);
}

struct db_session *core_session(struct core *c)
{
	static _Thread_local struct db_session *mine;
	static _Thread_local struct core *owner;
	if (mine != NULL && owner == c)
		return mine;
	struct session_slot *slot = calloc(1, sizeof(*slot));
	if (slot == NULL)
		return NULL;
	if (db_session_open(c->db, &slot->s) != DB_OK) {
		free(slot);
		return NULL;
	}
	pthread_mutex_lock(&c->smu);
	slot->next = c->sessions;
	c->sessions = slot;
	pthread_mutex_unlock(&c->smu);
	mine = slot->s;
	owner = c;
	return mine;
}

static void free_core(struct core *c)
{
	peer_stop(c->peers); /* no more deliveries into the inbox */
	c->peers = NULL;
	core_poller_stop(c->poller); /* after every user of its queue */
	c->poller = NULL;
	writer_drain(c);
	forward_close(c);
	node_close(c);
	struct session_slot *s = c->sessions;
	while (s != NULL) {
		struct session_slot *next = s->next;
		db_session_close(s->s);
		free(s);
		s = next;
	}
	snap_maker_free(c);
	lessor_free(c->lessor);
	if (c->members.list != NULL)
		members_close(&c->members);
	auth_free(c->auth);
	alarm_free(c);
	db_session_close(c->wsession);
	db_session_close(c->csession);
	db_session_close(c->ksession);
	mvcc_close(c->mvcc);
	db_close(c->db);
	free((void *)c->cfg.client_urls);
	free((void *)c->cfg.peer_urls);
	free((void *)c->cfg.listen_peer_urls);
	for (size_t i = 0; i < c->n_strings; i++)
		free(c->strings[i]);
	free(c->strings);
	pthread_rwlock_destroy(&c->install_lock);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->pcv);
	pthread_mutex_destroy(&c->cmu);
	pthread_cond_destroy(&c->ccv);
	pthread_mutex_destroy(&c->smu);
	pthread_mutex_destroy(&c->kmu);
	pthread_mutex_destroy(&c->rmu);
	pthread_cond_destroy(&c->rcv);
	pthread_cond_destroy(&c->kcv);
	free(c);
}

static struct peer_tls peer_tls_of(const struct core_config *cfg)
{
	return (struct peer_tls){
		.cert_file = cfg->peer_cert_file,
		.key_file = cfg->peer_key_file,
		.ca_file = cfg->peer_trusted_ca_file,
		.client_cert_auth = cfg->peer_client_cert_auth,
		.self_signed = cfg->peer_self_signed,
		.crl_dir = cfg->peer_crl_dir,
		.allowed_cn = cfg->peer_allowed_cn,
		.allowed_hostname = cfg->peer_allowed_hostname,
		.skip_client_san = cfg->peer_skip_client_san,
	};
}

/* The member list: stored, or for a new member built from --initial-cluster,
 * or (--initial-cluster-state existing) fetched from the members there. */
static int open_members(struct core *c, char *err, size_t errlen)
{
	if (members_stored(c->wsession) || strcmp(c->cfg.initial_cluster_state, "existing") != 0)
		return members_open(&c->members, c->wsession, c->cfg.initial_cluster,
				    c->cfg.cluster_token, c->cfg.name, c->cfg.peer_urls,
				    c->cfg.n_peer_urls, &c->member_id, err, errlen);
	/* Ask every other member named in --initial-cluster. */
	const char *urls[64];
	char *spec = strdup(c->cfg.initial_cluster), *save = NULL;
	size_t n = 0;
	for (char *tok = spec ? strtok_r(spec, ",", &save) : NULL; tok && n < 64;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		bool mine = false;
		for (size_t i = 0; eq && i < c->cfg.n_peer_urls; i++)
			mine |= strcmp(eq + 1, c->cfg.peer_urls[i]) == 0;
		if (eq != NULL && !mine)
			urls[n++] = eq + 1;
	}
	struct peer_tls tls = peer_tls_of(&c->cfg);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv = spec ? peer_fetch_members(&tls, urls, n, 5000, &buf, &len, err, errlen) : -1;
	free(spec);
	if (rv == 0)
		rv = members_join(&c->members, c->wsession, buf, len, c->cfg.peer_urls,
				  c->cfg.n_peer_urls, &c->member_id, err, errlen);
	free(buf);
	c->joining = rv == 0;
	return rv;
}

/* This member's own name and client URLs are in its list from the start:
 * MemberList answered before its publish entry is applied (right after a
 * start) shows them, as the other members will once it publishes. */
static int know_myself(struct core *c)
{
	Etcdserverpb__Member attr = ETCDSERVERPB__MEMBER__INIT;
	attr.id = c->member_id;
	attr.name = (char *)c->cfg.name;
	attr.n_clienturls = c->cfg.n_client_urls;
	attr.clienturls = (char **)c->cfg.client_urls;
	return members_apply_attr(&c->members, c->wsession, &attr);
}

/* The Members call of a joining member: the list with the cluster id. */
static uint8_t *members_for_peer(void *arg, size_t *len)
{
	struct core *c = arg;
	uint8_t *buf = members_pack(&c->members, len);
	Etcdserverpb__MemberListResponse *l =
		buf ? etcdserverpb__member_list_response__unpack(NULL, *len, buf) : NULL;
	free(buf);
	if (l == NULL)
		return NULL;
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	h.cluster_id = c->cluster_id;
	h.member_id = c->member_id;
	Etcdserverpb__ResponseHeader *keep = l->header;
	l->header = &h;
	*len = etcdserverpb__member_list_response__get_packed_size(l);
	buf = malloc(*len ? *len : 1);
	if (buf != NULL)
		etcdserverpb__member_list_response__pack(l, buf);
	l->header = keep;
	etcdserverpb__member_list_response__free_unpacked(l, NULL);
	return buf;
}

/* Listen on the peer URLs and know every other member's. Messages that
 * arrive before the writer starts wait in its inbox. A lone member starts
 * it too, as etcd listens on its peer URLs from the start: a taken peer
 * port then fails the start (server/main.c probes it even before the
 * store opens), not the `member add --learner` that grows the cluster,
 * whose learner would be committed and then never reached. It once
 * cost a lone member ~60 us of CPU per put from one client, when the
 * transport polled on threads of its own; it shares the polling thread
 * now (poller.h), and idle it costs two sleeping threads. */
static int core_peers_start(struct core *c, char *err, size_t errlen)
{
	if (c->cfg.n_listen_peer_urls == 0 || c->peers != NULL)
		return 0;
	struct peer_config pc = {
		.listen_urls = c->cfg.listen_peer_urls,
		.n_listen_urls = c->cfg.n_listen_peer_urls,
		.tls = peer_tls_of(&c->cfg),
		.self_id = c->member_id,
		.cluster_id = c->cluster_id,
		.members = members_for_peer,
		.snapshot = snap_serve,
		.hash = corrupt_serve_hash,
		.snapshot_state = snap_file_state,
		.poller = c->poller,
	};
	if (peer_start(&pc, node_recv, c, &c->peers, err, errlen) != 0)
		return -1;
	return core_peers_sync(c, err, errlen);
}

int core_peers_sync(struct core *c, char *err, size_t errlen)
{
	if (c->peers == NULL)
		return 0;
	uint64_t ids[MEMBERS_MAX];
	bool learner[MEMBERS_MAX];
	size_t n = members_ids(&c->members, ids, learner, MEMBERS_MAX);
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == c->member_id)
			continue;
		size_t nu = 0;
		char **urls = members_peer_urls(&c->members, ids[i], &nu);
		int rv = urls ? peer_set(c->peers, ids[i], (const char *const *)urls, nu) : -1;
		members_free_urls(urls, nu);
		if (rv != 0) {
			snprintf(err, errlen, "peer %016llx: bad peer URL", (unsigned long long)ids[i]);
			return -1;
		}
	}
	return 0;
}

/* Start the node's threads in order; on failure stop those already started,
 * in reverse, and say which one failed. */
static int start_threads(struct core *c, char *err, size_t errlen)
{
	const char *what;
	/* The hub before the compactor, which wakes it (watch_poke). */
	what = "watch hub";
	if (watch_start(c) != DB_OK)
		goto err;
	what = "compactor";
	if (compactor_start(c) != DB_OK)
		goto err_after_watch;
	what = "checkpoint";
	if (checkpointer_start(c) != DB_OK)
		goto err_after_compactor;
	what = "responder";
	if (responder_start(c) != DB_OK)
		goto err_after_checkpointer;
	what = "writer";
	if (writer_start(c) != DB_OK)
		goto err_after_responder;
	what = "lessor";
	if (lessor_start(c->lessor) != DB_OK)
		goto err_after_writer;
	return DB_OK;

err_after_writer:
	writer_stop(c);
err_after_responder:
	responder_stop(c);
err_after_checkpointer:
	checkpointer_stop(c);
err_after_compactor:
	compactor_stop(c);
err_after_watch:
	watch_stop(c);
err:
	snprintf(err, errlen, "%s thread", what);
	return DB_NOMEM;
}

int core_open(const struct core_config *cfg, struct core **out, char *err, size_t errlen)
{
	struct core *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return CORE_ENOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->pcv, NULL);
	pthread_mutex_init(&c->cmu, NULL);
	pthread_cond_init(&c->ccv, NULL);
	pthread_mutex_init(&c->smu, NULL);
	pthread_mutex_init(&c->kmu, NULL);
	pthread_mutex_init(&c->rmu, NULL);
	pthread_cond_init(&c->rcv, NULL);
	pthread_cond_init(&c->kcv, NULL);
	pthread_rwlockattr_t rwa;
	pthread_rwlockattr_init(&rwa);
	/* Readers come all the time: an install must not wait them out. */
	pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&c->install_lock, &rwa);
	pthread_rwlockattr_destroy(&rwa);
	atomic_init(&c->watch_floor, INT64_MAX); /* no hub reading yet */
	atomic_init(&c->kbytes, 0);
	atomic_init(&c->cwaiting, false);
	if (copy_config(c, cfg) != 0 || snap_maker_init(c) != 0) {
		snprintf(err, errlen, "out of memory");
		free_core(c);
		return CORE_ENOMEM;
	}
	if (core_poller_start(&c->poller) != 0) {
		snprintf(err, errlen, "cannot start the polling thread");
		free_core(c);
		return CORE_EINTERNAL;
	}
	if (c->cfg.max_request_bytes == 0)
		c->cfg.max_request_bytes = 1572864; /* etcd's default, 1.5 MiB */
	c->quota = cfg->quota_backend_bytes > 0 ? cfg->quota_backend_bytes : DEFAULT_QUOTA;

	/* Request ids start from the clock, so an entry proposed before a
	 * restart never matches a call waiting after it. */
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	atomic_init(&c->next_req_id,
		    ((uint64_t)rt.tv_sec * 1000 + (uint64_t)rt.tv_nsec / 1000000) << 16);

	if (mkdir(c->cfg.data_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create data dir %s: %s", c->cfg.data_dir, strerror(errno));
		free_core(c);
		return CORE_EINTERNAL;
	}
	struct db_options dbo = {.cache_mb = cfg->cache_mb,
				 .unjournaled_state = 1,
				 .wal_dir = cfg->wal_dir,
				 .log = core_db_log};
	int rv = db_open(c->cfg.data_dir, &dbo, &c->db, err, errlen);
	if (rv == DB_OK && (rv = rlog_init(c->db)) != DB_OK)
		snprintf(err, errlen, "raft log: %s", db_strerror(rv));
	if (rv == DB_OK && (rv = mvcc_open(c->db, &c->mvcc)) != DB_OK)
		snprintf(err, errlen, "mvcc: %s", db_strerror(rv));
	if (rv == DB_OK && cfg->compaction_batch_limit <= INT32_MAX)
		mvcc_set_compact_batch(c->mvcc, (int)cfg->compaction_batch_limit);
	if (rv == DB_OK && ((rv = db_session_open(c->db, &c->wsession)) != DB_OK ||
			    (rv = db_session_open(c->db, &c->csession)) != DB_OK ||
			    (rv = db_session_open(c->db, &c->ksession)) != DB_OK))
		snprintf(err, errlen, "session: %s", db_strerror(rv));
	if (rv == DB_OK && snap_recover(c, err, errlen) != 0)
		rv = DB_INVALID;
	if (rv == DB_OK && open_members(c, err, errlen) != 0)
		rv = DB_INVALID;
	if (rv == DB_OK && (rv = know_myself(c)) != DB_OK)
		snprintf(err, errlen, "member list: %s", db_strerror(rv));
	c->cluster_id = c->members.cluster_id;
	if (rv == DB_OK && (rv = lessor_open(c, &c->lessor)) != DB_OK)
		snprintf(err, errlen, "lessor: %s", db_strerror(rv));
	if (rv == DB_OK) /* before replay: it applies auth entries */
		rv = auth_open(c, err, errlen);
	if (rv == DB_OK && (rv = alarm_open(c)) != DB_OK) /* before replay too */
		snprintf(err, errlen, "alarms: %s", db_strerror(rv));
	if (rv == DB_OK) /* what the last checkpoint holds; replay covers the rest */
		atomic_store(&c->durable_index, mvcc_consistent_index(c->mvcc));
	if (rv == DB_OK && (rv = forward_open(c)) != DB_OK)
		snprintf(err, errlen, "out of memory");
	if (rv == DB_OK && node_open(c, err, errlen) != 0)
		rv = DB_INVALID;
	if (rv == DB_OK && core_peers_start(c, err, errlen) != 0)
		rv = DB_INVALID;
	if (rv == DB_OK)
		atomic_store(&c->db_size, db_size_bytes(c->db));
	if (rv == DB_OK && corrupt_initial_check(c, err, errlen) != 0)
		rv = DB_INVALID;
	if (rv != DB_OK) {
		free_core(c);
		return CORE_EINTERNAL;
	}
	if (start_threads(c, err, errlen) != DB_OK) {
		free_core(c);
		return CORE_EINTERNAL;
	}
	if (autocompact_start(c) != CORE_OK) {
		snprintf(err, errlen, "auto-compaction: out of memory");
		core_close(c);
		return CORE_ENOMEM;
	}
	if (corrupt_monitor_start(c) != CORE_OK) {
		snprintf(err, errlen, "corruption checks: out of memory");
		core_close(c);
		return CORE_ENOMEM;
	}
	*out = c;
	return CORE_OK;
}

void core_close(struct core *c)
{
	if (c == NULL)
		return;
	corrupt_monitor_stop(c); /* it reads and raises alarms: before the writer */
		autocompact_stop(c); /* it proposes compactions: stop it before the writer */
	lessor_stop(c->lessor); /* it proposes revokes: stop it before the writer */
	writer_stop(c);
	snap_fetch_stop(c); /* it fetches through the transport */
	peer_stop(c->peers); /* after the writer: its last cycle may still send */
	c->peers = NULL;
	forward_close(c); /* calls to the leader end "stopped" */
	node_close(c);
	responder_stop(c); /* after the writer: it answers the writer's last batch */
	checkpointer_stop(c);
	compactor_stop(c); /* before the hub, which it wakes */
	watch_stop(c);
	autocompact_free(c); /* everything it proposed has been answered */
	uint64_t commits = atomic_load(&c->commits), reqs = atomic_load(&c->requests);
	core_log("info", "write path: %llu requests in %llu synced commits",
		(unsigned long long)reqs, (unsigned long long)commits);
	free_core(c);
}

struct grpc_completion_queue *core_polling_cq(const struct core *c)
{
	return core_poller_cq(c->poller);
}

const struct core_config *core_config(const struct core *c)
{
	return &c->cfg;
}

void core_write_stats(struct core *c, uint64_t *commits, uint64_t *requests)
{
	*commits = atomic_load(&c->commits);
	*requests = atomic_load(&c->requests);
}

void core_fill_header(struct core *c, Etcdserverpb__ResponseHeader *h, int64_t rev)
{
	h->cluster_id = c->cluster_id;
	h->member_id = c->member_id;
	h->raft_term = atomic_load(&c->term);
	h->revision = rev > 0 ? rev : mvcc_rev(c->mvcc);
}

void core_status(struct core *c, struct core_status *st)
{
	memset(st, 0, sizeof(*st));
	st->cluster_id = c->cluster_id;
	st->member_id = c->member_id;
	st->leader = atomic_load(&c->leader);
	st->raft_term = atomic_load(&c->term);
	st->raft_index = atomic_load(&c->last_index);
	st->applied_index = mvcc_consistent_index(c->mvcc);
	st->revision = mvcc_rev(c->mvcc);
	st->compact_revision = mvcc_compact_rev(c->mvcc);
	/* stat() of every file is too slow per call; what was applied since
	 * the last checkpoint is not in the files yet (the quota counts it too). */
	st->db_size = atomic_load(&c->db_size) + atomic_load(&c->kbytes);
	st->db_size_in_use = st->db_size;
}

int core_hash_kv(struct core *c, int64_t rev, uint32_t *hash, int64_t *compact_rev,
		 int64_t *hash_rev)
{
	struct db_session *s = core_session(c);
	if (s == NULL)
		return CORE_ENOMEM;
	int64_t at = rev > 0 ? rev : mvcc_rev(c->mvcc);
	int rv = mvcc_hash(c->mvcc, s, at, hash, compact_rev);
	*hash_rev = at;
	return core_db_err(rv);
}

int core_defragment(struct core *c)
{
	struct db_session *s = core_session(c);
	if (s == NULL)
		return CORE_ENOMEM;
	int rv = db_defragment(s);
	if (rv == DB_OK)
		atomic_store(&c->db_size, db_size_bytes(c->db));
	return core_db_err(rv);
}

/* ---- request entry points ---- */

/* etcd refuses writes that would grow the db past the quota. */
static bool over_quota(struct core *c, size_t grow)
{
	/* The key space reaches its files at checkpoints: count what was
	 * applied since the last one too. */
	uint64_t size = atomic_load(&c->db_size) + atomic_load(&c->kbytes);
	if ((int64_t)(size + grow) <= c->quota)
		return false;
	alarm_raise_nospace(c); /* as etcd's quota check does */
	return true;
}

static void range_now(struct core *c, const ProtobufCMessage *m, core_done_fn cb, void *arg)
{
	const Etcdserverpb__RangeRequest *req = (const Etcdserverpb__RangeRequest *)m;
	struct db_session *s = core_session(c);
	if (s == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	struct reply *r = reply_new();
	if (r == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	Etcdserverpb__RangeResponse *resp = NULL;
	pthread_rwlock_rdlock(&c->install_lock);
	int err = core_range_exec(c, s, r, req, &resp);
	pthread_rwlock_unlock(&c->install_lock);
	reply_done(r, err, resp ? &resp->base : NULL, cb, arg);
}

void core_range(struct core *c, const Etcdserverpb__RangeRequest *req, core_done_fn cb, void *arg)
{
	int err = validate_range(req);
	if (err != CORE_OK)
		reply_fail(cb, arg, err);
	else if (req->serializable)
		range_now(c, &req->base, cb, arg);
	else
		core_linearize(c, &req->base, range_now, cb, arg);
}

static void put(struct core *c, const Etcdserverpb__PutRequest *req, bool kept, core_done_fn cb,
		void *arg)
{
	int err = validate_put(req);
	if (err == CORE_OK && over_quota(c, req->key.len + req->value.len))
		err = CORE_ENOSPACE;
	if (err != CORE_OK) {
		reply_fail(cb, arg, err);
		return;
	}
	Metadpb__InternalRequest ir = METADPB__INTERNAL_REQUEST__INIT;
	ir.request_case = METADPB__INTERNAL_REQUEST__REQUEST_PUT;
	ir.put = (Etcdserverpb__PutRequest *)req;
	(kept ? writer_submit_kept : writer_submit)(c, &ir, cb, arg);
}

void core_put(struct core *c, const Etcdserverpb__PutRequest *req, core_done_fn cb, void *arg)
{
	put(c, req, false, cb, arg);
}

static void delete_range(struct core *c, const Etcdserverpb__DeleteRangeRequest *req, bool kept,
			 core_done_fn cb, void *arg)
{
	int err = validate_delete(req);
	if (err != CORE_OK) {
		reply_fail(cb, arg, err);
		return;
	}
	Metadpb__InternalRequest ir = METADPB__INTERNAL_REQUEST__INIT;
	ir.request_case = METADPB__INTERNAL_REQUEST__REQUEST_DELETE_RANGE;
	ir.delete_range = (Etcdserverpb__DeleteRangeRequest *)req;
	(kept ? writer_submit_kept : writer_submit)(c, &ir, cb, arg);
}

void core_delete_range(struct core *c, const Etcdserverpb__DeleteRangeRequest *req, core_done_fn cb,
		       void *arg)
{
	delete_range(c, req, false, cb, arg);
}

static void txn_readonly(struct core *c, const ProtobufCMessage *m, core_done_fn cb, void *arg)
{
	const Etcdserverpb__TxnRequest *req = (const Etcdserverpb__TxnRequest *)m;
	struct db_session *s = core_session(c);
	struct reply *r = s ? reply_new() : NULL;
	if (r == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	/* One snapshot for compares and reads, as etcd's read-only txn. */
	pthread_rwlock_rdlock(&c->install_lock);
	int err = db_txn_begin(s) == DB_OK ? CORE_OK : CORE_EINTERNAL;
	Etcdserverpb__TxnResponse *resp = NULL;
	if (err == CORE_OK) {
		err = apply_txn(c, s, r, req, false, false, &resp);
		db_txn_abort(s);
	}
	pthread_rwlock_unlock(&c->install_lock);
	reply_done(r, err, resp ? &resp->base : NULL, cb, arg);
}

static void txn(struct core *c, const Etcdserverpb__TxnRequest *req, bool kept, core_done_fn cb,
		void *arg)
{
	int err = validate_txn(req, c->cfg.max_txn_ops ? c->cfg.max_txn_ops : 128);
	if (err != CORE_OK) {
		reply_fail(cb, arg, err);
		return;
	}
	if (txn_is_readonly(req)) {
		if (txn_is_serializable(req))
			txn_readonly(c, &req->base, cb, arg);
		else
			core_linearize(c, &req->base, txn_readonly, cb, arg);
		return;
	}
	if (over_quota(c, etcdserverpb__txn_request__get_packed_size(req))) {
		reply_fail(cb, arg, CORE_ENOSPACE);
		return;
	}
	Metadpb__InternalRequest ir = METADPB__INTERNAL_REQUEST__INIT;
	ir.request_case = METADPB__INTERNAL_REQUEST__REQUEST_TXN;
	ir.txn = (Etcdserverpb__TxnRequest *)req;
	(kept ? writer_submit_kept : writer_submit)(c, &ir, cb, arg);
}

void core_txn(struct core *c, const Etcdserverpb__TxnRequest *req, core_done_fn cb, void *arg)
{
	txn(c, req, false, cb, arg);
}

void core_write_kept(struct core *c, const ProtobufCMessage *req, core_done_fn cb, void *arg)
{
	if (req->descriptor == &etcdserverpb__put_request__descriptor)
		put(c, (const Etcdserverpb__PutRequest *)req, true, cb, arg);
	else if (req->descriptor == &etcdserverpb__delete_range_request__descriptor)
		delete_range(c, (const Etcdserverpb__DeleteRangeRequest *)req, true, cb, arg);
	else if (req->descriptor == &etcdserverpb__txn_request__descriptor)
		txn(c, (const Etcdserverpb__TxnRequest *)req, true, cb, arg);
	else
		reply_fail(cb, arg, CORE_EINTERNAL);
}

void core_compact(struct core *c, const Etcdserverpb__CompactionRequest *req, core_done_fn cb,
		  void *arg)
{
	Metadpb__InternalRequest ir = METADPB__INTERNAL_REQUEST__INIT;
	ir.request_case = METADPB__INTERNAL_REQUEST__REQUEST_COMPACTION;
	ir.compaction = (Etcdserverpb__CompactionRequest *)req;
	writer_submit(c, &ir, cb, arg);
}

/*
 * core/node_start.c — the node driver's start and end: loading what Raft
 * persisted (hard state, snapshot metadata, the log after it), creating the
 * node and replaying what is committed, --force-new-cluster, and close.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/node_internal.h"

/* ---- start-up ---- */

struct load {
	struct raft_entry *e;
	size_t n, cap;
	int err;
};

static int collect(void *arg, const struct rlog_entry *re)
{
	struct load *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct raft_entry *e = realloc(l->e, cap * sizeof(*e));
		if (e == NULL) {
			l->err = DB_NOMEM;
			return 1;
		}
		l->e = e;
		l->cap = cap;
	}
	uint8_t *d = malloc(re->len ? re->len : 1);
	if (d == NULL) {
		l->err = DB_NOMEM;
		return 1;
	}
	memcpy(d, re->data, re->len);
	l->e[l->n++] = (struct raft_entry){.term = re->term, .index = re->index, .type = re->type,
					   .len = (uint32_t)re->len, .data = d};
	return 0;
}

static int load_entries(struct core *c, uint64_t from, uint64_t last, struct load *l)
{
	while (from <= last) {
		size_t before = l->n;
		int rv = rlog_read(c->wsession, from, last + 1, 8u << 20, collect, l);
		if (l->err != DB_OK)
			return l->err;
		if (rv != DB_OK)
			return rv;
		if (l->n == before)
			return DB_CORRUPT;
		from = l->e[l->n - 1].index + 1;
	}
	return DB_OK;
}

static void free_load(struct load *l)
{
	for (size_t i = 0; i < l->n; i++)
		free((void *)l->e[i].data);
	free(l->e);
}

/* Initial configuration from the member list (a new cluster, or a data
 * directory written before Raft kept its own). */
static void initial_conf(struct core *c, struct raft_conf *conf)
{
	uint64_t ids[MEMBERS_MAX];
	bool learner[MEMBERS_MAX];
	size_t k = members_ids(&c->members, ids, learner, MEMBERS_MAX);
	memset(conf, 0, sizeof(*conf));
	for (size_t i = 0; i < k; i++) {
		if (learner[i])
			conf->learners[conf->n_learners++] = ids[i];
		else
			conf->voters[conf->n_voters++] = ids[i];
	}
}

static int load_state(struct core *c, struct raft_persisted *p, struct load *l, char *err,
		      size_t errlen)
{
	struct rlog_hardstate hs;
	uint64_t first = 0, last = 0;
	int rv = rlog_load_hardstate(c->wsession, &hs);
	if (rv == DB_OK)
		rv = rlog_bounds(c->wsession, &first, &last);
	if (rv != DB_OK) {
		snprintf(err, errlen, "raft state: %s", db_strerror(rv));
		return -1;
	}
	memset(p, 0, sizeof(*p));
	p->hard_state = (struct raft_hard_state){hs.term, hs.vote, hs.commit};
	uint8_t *buf = NULL;
	size_t len = 0;
	rv = rlog_load_blob(c->wsession, SNAP_BLOB, &buf, &len);
	if (rv == DB_OK) {
		rv = raft_snapshot_meta_decode(buf, len, &p->snapshot.meta) == 0 ? DB_OK : DB_CORRUPT;
		free(buf);
	} else if (rv == DB_NOTFOUND && first == 1 && last == 0 && hs.term == 0) {
		/* First start: the configuration at index 0 is the initial
		 * cluster, or nothing for a member joining an existing one (it
		 * learns the configuration from the conf change entries it is
		 * sent, which carry the whole resulting configuration). Stored,
		 * so a restart starts from the same one. */
		if (!c->joining)
			initial_conf(c, &p->snapshot.meta.conf);
		rv = node_save_snapshot_meta(c->wsession, &p->snapshot.meta);
	} else if (rv == DB_NOTFOUND) {
		/* Written before Raft kept its own state: every member of the
		 * list was a voter, and the log starts at its first entry. */
		initial_conf(c, &p->snapshot.meta.conf);
		p->snapshot.meta.index = first - 1;
		if (first > 1 && (rv = rlog_term(c->wsession, first, &p->snapshot.meta.term)) != DB_OK)
			p->snapshot.meta.term = 0;
		rv = DB_OK;
	}
	uint64_t from = p->snapshot.meta.index + 1;
	if (rv == DB_OK && from < first)
		rv = DB_CORRUPT; /* the log lost entries after the snapshot */
	if (rv == DB_OK)
		rv = load_entries(c, from, last, l);
	if (rv != DB_OK) {
		snprintf(err, errlen, "raft log: %s", db_strerror(rv));
		return -1;
	}
	if (hs.term == 0 && l->n > 0) {
		/* Written by the single-node writer before Raft: every entry it
		 * stored was committed. */
		p->hard_state.term = l->e[l->n - 1].term;
		p->hard_state.commit = l->e[l->n - 1].index;
	}
	p->entries = l->e;
	p->n_entries = l->n;
	p->applied = mvcc_consistent_index(c->mvcc);
	atomic_store(&c->snap_index, p->snapshot.meta.index);
	atomic_store(&c->last_index, last);
	atomic_store(&c->term, p->hard_state.term);
	c->node->hs = (struct rlog_hardstate){p->hard_state.term, p->hard_state.vote,
					      p->hard_state.commit};
	return 0;
}

/* Create the Raft node from what is stored and replay what is committed. */
static int create(struct core *c, const struct raft_config *rc, char *err, size_t errlen)
{
	struct node *n = c->node;
	struct raft_persisted p;
	struct load l = {0};
	if (load_state(c, &p, &l, err, errlen) != 0) {
		free_load(&l);
		return -1;
	}
	int rv = raft_create(rc, &p, &c->raft);
	free_load(&l);
	if (rv != 0) {
		snprintf(err, errlen, "raft: %s", raft_strerror(rv));
		return -1;
	}
	node_conf_sync(c, n);
	const struct raft_conf *conf = raft_conf(c->raft);
	/* A lone voter need not wait an election timeout to lead. */
	if (conf->n_voters == 1 && conf->voters[0] == n->self)
		raft_campaign(c->raft);
	/* Replay what is committed before serving. */
	struct node_in in = {0};
	node_cycle(c, &in);
	return 0;
}

/*
 * --force-new-cluster (etcd's disaster recovery when a majority is lost):
 * keep the data this member has applied, discard the log entries after it
 * (not known to be committed), and restart as the only member of the
 * same cluster. Runs after the replay, so everything this member knew to
 * be committed is in the store.
 */
static int force_new_cluster(struct core *c, const struct raft_config *rc, char *err, size_t errlen)
{
	struct node *n = c->node;
	uint64_t ci = mvcc_consistent_index(c->mvcc);
	struct raft_snapshot_meta meta = {.index = ci};
	if (raft_log_term(c->raft, ci, &meta.term) != 0)
		meta.term = 0;
	struct raft_status st;
	raft_status(c->raft, &st);
	meta.conf.n_voters = 1;
	meta.conf.voters[0] = n->self;
	core_log("warn", "forcing restart of member %llx in cluster %llx with only itself; "
			 "discarding log entries %llu..%llu",
		 (unsigned long long)n->self, (unsigned long long)c->cluster_id,
		 (unsigned long long)ci + 1, (unsigned long long)st.last_index);
	raft_destroy(c->raft);
	c->raft = NULL;
	struct rlog_hardstate hs = {st.term, 0, ci};
	int rv = db_txn_begin(c->wsession);
	if (rv == DB_OK)
		rv = rlog_truncate(c->wsession, ci + 1);
	if (rv == DB_OK)
		rv = rlog_compact(c->wsession, ci + 1);
	if (rv == DB_OK)
		rv = node_save_snapshot_meta(c->wsession, &meta);
	if (rv == DB_OK)
		rv = rlog_save_hardstate(c->wsession, &hs);
	if (rv == DB_OK)
		rv = members_keep_only(&c->members, c->wsession, n->self);
	if (rv == DB_OK)
		rv = db_txn_commit(c->wsession, 1);
	else
		db_txn_abort(c->wsession);
	if (rv != DB_OK) {
		snprintf(err, errlen, "--force-new-cluster: %s", db_strerror(rv));
		return -1;
	}
	memset(&n->conf, 0, sizeof(n->conf));
	return create(c, rc, err, errlen);
}

/* protobuf-c's allocator over the apply batch's arena: frees nothing. */
static void *unpack_alloc(void *arena, size_t size)
{
	return arena_alloc_raw(arena, size);
}

static void unpack_free(void *arena, void *p)
{
	(void)arena;
	(void)p;
}

int node_open(struct core *c, char *err, size_t errlen)
{
	struct node *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->node = n;
	arena_init(&n->unpacked);
	n->unpack_alloc = (ProtobufCAllocator){unpack_alloc, unpack_free, &n->unpacked};
	n->self = c->member_id;
	int64_t tick_ms = c->cfg.heartbeat_ms > 0 ? c->cfg.heartbeat_ms : 100;
	int64_t election_ms = c->cfg.election_ms > 0 ? c->cfg.election_ms : 1000;
	c->tick_ns = tick_ms * 1000000LL;
	/* etcd's ReqTimeout: 5 s plus two election timeouts. */
	n->req_timeout_ns = (5000 + 2 * election_ms) * 1000000LL;
	c->req_timeout_ns = n->req_timeout_ns;
	n->snapshot_count = c->cfg.snapshot_count > 0 ? c->cfg.snapshot_count : 100000;
	n->catchup_entries = c->cfg.catchup_entries > 0 ? c->cfg.catchup_entries : 5000;

	struct raft_config rc;
	raft_config_init(&rc, n->self);
	rc.heartbeat_tick = 1;
	rc.election_tick = (int)(election_ms / tick_ms);
	if (rc.election_tick <= rc.heartbeat_tick)
		rc.election_tick = rc.heartbeat_tick + 1;
	rc.pre_vote = c->cfg.pre_vote;
	rc.check_quorum = true;
	rc.seed = (uint64_t)node_now_ns() ^ n->self;
	rc.max_msg_bytes = 1u << 20;
	/*
	 * One append in flight per follower (etcd allows 512): while it is out,
	 * new entries wait and leave together with the acknowledgement, so under
	 * load each follower gets fewer, larger appends (fewer gRPC messages,
	 * wake-ups, log commits and fsyncs on both sides) and a lone write
	 * waits for nothing. 3 members, 1,000-client puts, alternating runs:
	 * 58.4-69.1 us of CPU per put (all members, eleven runs) against
	 * 65.1-77.9 with 256 in flight (2 in flight: no better than 256),
	 * puts/s +4-15%.
	 * The cost is on slow links: under continuous load an entry may wait up
	 * to one round trip before it is sent, and a lagging follower receives
	 * max_msg_bytes per round trip.
	 */
	rc.max_inflight_msgs = 1;
	if (create(c, &rc, err, errlen) != 0)
		return -1;
	if (c->cfg.force_new_cluster && raft_conf(c->raft)->n_voters + raft_conf(c->raft)->n_learners > 1)
		return force_new_cluster(c, &rc, err, errlen);
	return 0;
}

void node_close(struct core *c)
{
	struct node *n = c->node;
	if (n == NULL)
		return;
	/* Pending proposals were answered by writer_stop (stopping); anything
	 * left here was never acknowledged. */
	for (size_t k = 0; k < PENDING_BUCKETS; k++)
		for (struct proposal *p = n->pending[k], *next; p; p = next) {
			next = p->hnext;
			p->reply->pub.err = CORE_ESTOPPED;
			p->cb(p->arg, &p->reply->pub);
			free(p);
		}
	for (struct read_wait *w = n->reads, *next; w; w = next) {
		next = w->next;
		w->run(w->arg, CORE_ESTOPPED);
	}
	for (struct node_transfer *t = n->transfers, *next; t; t = next) {
		next = t->next;
		t->done(t->arg, CORE_ESTOPPED);
	}
	for (struct node_wait *w = n->waits, *next; w; w = next) {
		next = w->next;
		w->done(c, w, CORE_ESTOPPED);
	}
	raft_destroy(c->raft);
	c->raft = NULL;
	free(n->ents);
	free(n->bufs);
	free(n->local);
	arena_free(&n->unpacked);
	free(n->sendbuf);
	free(n);
	c->node = NULL;
}

/*
 * core/node.c — the Raft node driver: persist, send, apply, advance.
 *
 * Ordering (raft/raft.h): entries and hard state are durable before any
 * message that depends on them leaves, and nothing is applied before it is
 * committed. A batch of proposals costs one synced commit: a hard state
 * whose commit index alone moved is not written on its own (see persist).
 * Applying skips entries at or below the stored consistent index, which
 * makes replay and re-delivery idempotent.
 *
 * Requests carry (origin member, id); the member that received a request
 * keeps it in the pending table and answers when its own apply reaches the
 * entry, whoever proposed it to the log (a follower forwards to the leader).
 * A proposal not applied within etcd's request timeout fails with
 * "etcdserver: request timed out".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core_internal.h"
#include "core/lease_internal.h"
#include "core/node.h"
#include "core/node_internal.h"
#include "core/peer.h"
#include "core/snapshot.h"
#include "storage/raftlog.h"

#define READ_RETRY_NS (500LL * 1000000)  /* etcd's readIndexRetryTime */
#define UNPACKED_MAX (1u << 20)           /* the apply arena's chunk at which it is freed */

void node_fatal(const char *what, const char *why)
{
	/* Storage failed under an acknowledged log: stop rather than diverge.
	 * Restart recovers from the log. */
	core_log("fatal", "%s: %s", what, why);
	abort();
}

int64_t node_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- pending proposals ---- */

static size_t slot(uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 52) & (PENDING_BUCKETS - 1);
}

static void pending_put(struct node *n, struct proposal *p)
{
	size_t k = slot(p->id);
	p->hnext = n->pending[k];
	n->pending[k] = p;
	n->n_pending++;
}

static struct proposal *pending_take(struct node *n, uint64_t id)
{
	for (struct proposal **pp = &n->pending[slot(id)]; *pp; pp = &(*pp)->hnext) {
		if ((*pp)->id == id) {
			struct proposal *p = *pp;
			*pp = p->hnext;
			p->hnext = NULL;
			n->n_pending--;
			return p;
		}
	}
	return NULL;
}

/* Remember that the entry at index in term is kept proposal id. */
static void local_push(struct node *n, uint64_t index, uint64_t term, uint64_t id)
{
	if (n->local_len == n->local_cap) {
		size_t cap = n->local_cap ? n->local_cap * 2 : 256;
		struct node_local *l = malloc(cap * sizeof(*l));
		if (l == NULL)
			return; /* it is applied from its entry instead */
		for (size_t i = 0; i < n->local_len; i++)
			l[i] = n->local[(n->local_head + i) % n->local_cap];
		free(n->local);
		n->local = l;
		n->local_cap = cap;
		n->local_head = 0;
	}
	n->local[(n->local_head + n->local_len) % n->local_cap] = (struct node_local){index, term, id};
	n->local_len++;
}

/* The pending kept proposal that entry e is, if any. Raft's log matching:
 * one leader writes at most one entry per index in its term, so index and
 * term name the entry this member appended. Older records are dropped: an
 * entry overwritten by another leader is never applied. */
static struct proposal *local_take(struct node *n, const struct raft_entry *e)
{
	while (n->local_len > 0) {
		struct node_local l = n->local[n->local_head];
		if (l.index > e->index)
			return NULL;
		n->local_head = (n->local_head + 1) % n->local_cap;
		n->local_len--;
		if (l.index == e->index && l.term == e->term)
			return pending_take(n, l.id);
	}
	return NULL;
}

static void done(struct node *n, struct proposal *p)
{
	p->next = NULL;
	if (n->done_tail)
		n->done_tail->next = p;
	else
		n->done_head = p;
	n->done_tail = p;
	n->n_done++;
}

static void fail(struct node *n, struct proposal *p, int err)
{
	p->reply->pub.err = err;
	p->reply->pub.msg = NULL;
	done(n, p);
}

/* Proposals older than etcd's request timeout give up. */
static void expire_pending(struct node *n, int64_t now)
{
	if (n->n_pending == 0)
		return;
	for (size_t k = 0; k < PENDING_BUCKETS; k++) {
		for (struct proposal **pp = &n->pending[k]; *pp;) {
			struct proposal *p = *pp;
			if (p->deadline_ns > now) {
				pp = &p->hnext;
				continue;
			}
			*pp = p->hnext;
			n->n_pending--;
			fail(n, p, CORE_ETIMEOUT);
		}
	}
}

/* ---- persistence ---- */

int node_save_snapshot_meta(struct db_session *s, const struct raft_snapshot_meta *m)
{
	uint8_t buf[64 + 2 * RAFT_MAX_MEMBERS * 11];
	size_t len;
	int rv = raft_snapshot_meta_encode(m, buf, sizeof(buf), &len);
	if (rv != 0)
		return DB_INVALID;
	return rlog_save_blob(s, SNAP_BLOB, buf, len);
}

/*
 * Entries, and a hard state whose term or vote changed: one synced commit.
 * A hard state whose commit index alone moved is not written by itself: it
 * goes with the next entries. A stale commit index on disk is harmless (the
 * leader tells followers again, a lone member re-commits its log when it
 * leads again, and apply skips what the store holds), and writing it alone
 * would add a journal write to every batch (raft_state is journaled).
 */
static void persist(struct core *c, struct node *n, const struct raft_ready *rd)
{
	struct rlog_hardstate hs = {rd->hard_state.term, rd->hard_state.vote, rd->hard_state.commit};
	bool vote_moved = rd->has_hard_state && (hs.term != n->hs.term || hs.vote != n->hs.vote);
	const struct raft_snapshot *snap = rd->snapshot;
	if (rd->n_entries == 0 && !vote_moved && snap == NULL)
		return;
	if (rd->n_entries > n->ents_cap) {
		size_t cap = rd->n_entries * 2;
		struct rlog_entry *e = realloc(n->ents, cap * sizeof(*e));
		if (e == NULL)
			node_fatal("log append", "out of memory");
		n->ents = e;
		n->ents_cap = cap;
	}
	for (size_t i = 0; i < rd->n_entries; i++) {
		const struct raft_entry *e = &rd->entries[i];
		n->ents[i] = (struct rlog_entry){e->index, e->term, e->type, e->data, e->len};
	}
	int rv = db_txn_begin(c->wsession);
	/* A snapshot from the leader (its store was installed before Raft saw
	 * the message, snap_fetch.c): the log restarts after it. */
	if (rv == DB_OK && snap != NULL)
		rv = node_save_snapshot_meta(c->wsession, &snap->meta);
	if (rv == DB_OK && snap != NULL)
		rv = rlog_compact(c->wsession, snap->meta.index + 1);
	if (rv == DB_OK && snap != NULL)
		rv = rlog_truncate(c->wsession, snap->meta.index + 1);
	if (rv == DB_OK && rd->n_entries > 0)
		rv = rlog_append(c->wsession, n->ents, rd->n_entries);
	if (rv == DB_OK && rd->has_hard_state)
		rv = rlog_save_hardstate(c->wsession, &hs);
	if (rv == DB_OK)
		rv = db_txn_commit(c->wsession, 1);
	else
		db_txn_abort(c->wsession);
	if (rv != DB_OK)
		node_fatal("log append", db_strerror(rv));
	if (rd->has_hard_state)
		n->hs = hs;
	atomic_fetch_add(&c->commits, 1);
	if (snap != NULL) {
		atomic_store(&c->last_index, snap->meta.index);
		atomic_store(&c->snap_index, snap->meta.index);
	}
	if (rd->n_entries > 0)
		atomic_store(&c->last_index, rd->entries[rd->n_entries - 1].index);
}

/* ---- sending ---- */

static void send_all(struct core *c, struct node *n, const struct raft_ready *rd)
{
	for (size_t i = 0; i < rd->n_messages; i++) {
		const struct raft_message *m = &rd->messages[i];
		size_t len;
		if (c->peers == NULL || raft_msg_encoded_size(m, &len) != 0)
			continue;
		if (len + 1 > n->sendcap) {
			uint8_t *b = realloc(n->sendbuf, len + 1);
			if (b == NULL)
				continue; /* dropped: Raft retransmits */
			n->sendbuf = b;
			n->sendcap = len + 1;
		}
		n->sendbuf[0] = PEER_KIND_RAFT;
		if (raft_msg_encode(m, n->sendbuf + 1, n->sendcap - 1, &len) == 0)
			peer_send(c->peers, m->to, n->sendbuf, len + 1);
	}
}

/* ---- membership changes as they take effect ---- */

/* A conf change entry applied: the member list drops a removed member,
 * and a removed leader learns it was removed itself. */
static void apply_conf_change(struct core *c, struct node *n, const struct raft_entry *e)
{
	struct raft_conf_change cc;
	if (raft_conf_change_decode(e->data, e->len, &cc) != 0)
		return; /* Raft refused it at append too */
	if (cc.type == RAFT_CC_ADD_LEARNER || cc.type == RAFT_CC_ADD_VOTER)
		n->member_added = true;
	if (cc.type != RAFT_CC_REMOVE)
		return;
	int rv = members_remove(&c->members, c->wsession, cc.node_id);
	if (rv != DB_OK)
		node_fatal("apply member removal", db_strerror(rv));
	members_mark_removed(&c->members, cc.node_id);
	/* Its stream stays, so that it can be told it was removed when it
	 * next calls (node_recv); it stops then. */
	if (cc.node_id == n->self) {
		core_log("warn", "the member has been permanently removed from the cluster");
		atomic_store(&c->removed, true);
	}
}

/* Raft's configuration is in force once appended: keep the list's view
 * of it current. */
void node_conf_sync(struct core *c, struct node *n)
{
	const struct raft_conf *conf = raft_conf(c->raft);
	if (memcmp(conf, &n->conf, sizeof(*conf)) == 0)
		return;
	n->conf = *conf;
	members_set_conf(&c->members, conf);
	atomic_store(&c->is_learner, raft_conf_is_learner(conf, n->self));
}

/* ---- apply ---- */

static void publish_done(void *arg, struct core_reply *reply);

static void publish(struct core *c)
{
	Etcdserverpb__Member attr = ETCDSERVERPB__MEMBER__INIT;
	attr.id = c->member_id;
	attr.name = (char *)c->cfg.name;
	attr.n_clienturls = c->cfg.n_client_urls;
	attr.clienturls = (char **)c->cfg.client_urls;
	Metadpb__InternalRequest ir = METADPB__INTERNAL_REQUEST__INIT;
	ir.request_case = METADPB__INTERNAL_REQUEST__REQUEST_MEMBER_ATTR;
	ir.member_attr = &attr;
	writer_submit(c, &ir, publish_done, c);
}

static void publish_done(void *arg, struct core_reply *reply)
{
	struct core *c = arg;
	int err = reply->err;
	core_reply_free(reply);
	/* etcd retries publishing until it succeeds or the server stops. */
	if (err != CORE_OK && err != CORE_ESTOPPED && !atomic_load(&c->published))
		publish(c);
}

/*
 * A proposal whose entry an installed snapshot covers is never applied
 * here, so never answered: it times out. For the publish that held the
 * client port shut for the whole request timeout (5-7 s) after a member
 * caught up by snapshot; proposing it again at once is harmless (the
 * attributes are set, not added).
 */
void node_republish(struct core *c, struct node *n)
{
	if (n->publishing && !atomic_load(&c->published))
		publish(c);
}

/* mine: proposed by this process (not replayed from an earlier run). */
static void apply_member_attr(struct core *c, const Etcdserverpb__Member *attr, bool mine)
{
	int rv = members_apply_attr(&c->members, c->wsession, attr);
	if (rv != DB_OK)
		node_fatal("apply member", db_strerror(rv));
	if (mine && !atomic_load(&c->published)) {
		core_log("info", "published local member to cluster (name %s, cluster-id %016llx)",
			 c->cfg.name, (unsigned long long)c->cluster_id);
		pthread_mutex_lock(&c->mu);
		atomic_store(&c->published, true);
		pthread_cond_broadcast(&c->pcv);
		pthread_mutex_unlock(&c->mu);
	}
}

static void apply_entry(struct core *c, struct node *n, const struct raft_entry *e)
{
	if (e->type == RAFT_ENTRY_CONF_CHANGE) {
		apply_conf_change(c, n, e);
		return;
	}
	if (e->type != RAFT_ENTRY_NORMAL || e->len == 0)
		return; /* a leader's empty entry */
	/* A kept request is what the entry was packed from: no unpacking. */
	struct proposal *p = local_take(n, e);
	const Metadpb__InternalRequest *req = p ? &p->ir : NULL;
	if (p == NULL) {
		req = metadpb__internal_request__unpack(&n->unpack_alloc, e->len, e->data);
		if (req != NULL && req->origin == n->self)
			p = pending_take(n, req->id);
	}
	if (req != NULL && req->request_case == METADPB__INTERNAL_REQUEST__REQUEST_MEMBER_ATTR) {
		apply_member_attr(c, req->member_attr, p != NULL);
		if (p != NULL) {
			p->reply->pub.err = CORE_OK;
			done(n, p);
		}
		return;
	}
	if (req != NULL && (req->request_case == METADPB__INTERNAL_REQUEST__REQUEST_MEMBER_ADD ||
			    req->request_case == METADPB__INTERNAL_REQUEST__REQUEST_MEMBER_UPDATE)) {
		int err = apply_member_change(c, req);
		if (p != NULL) {
			p->reply->pub.err = err;
			p->reply->pub.msg = NULL;
			if (err == CORE_OK)
				err = member_reply(c, p->reply, METADPB__INTERNAL_REQUEST__REQUEST_MEMBER_UPDATE, 0);
			p->reply->pub.err = err;
			done(n, p);
		}
		return;
	}
	struct reply *r = p ? p->reply : reply_new();
	if (r == NULL)
		node_fatal("apply", "out of memory");
	ProtobufCMessage *msg = NULL;
	int64_t crev = 0;
	int err = req ? apply_request(c, c->wsession, r, req, &msg, &crev) : CORE_EINTERNAL;
	if (err == CORE_ENOMEM)
		node_fatal("apply", "out of memory");
	/* The compactor is asked once the batch has committed (responder.c):
	 * asked now, it could run before the new compact revision is visible. */
	if (err == CORE_OK && crev > 0 && p != NULL) {
		p->compact_rev = crev;
		p->physical = req->compaction->physical;
	} else if (err == CORE_OK && crev > 0) {
		compactor_request(c, NULL);
	}
	r->pub.err = err;
	r->pub.msg = err == CORE_OK ? msg : NULL;
	if (p != NULL)
		done(n, p);
	else
		core_reply_free(&r->pub);
}

/* Apply rd's committed entries in one transaction with the consistent
 * index. */
static void apply_all(struct core *c, struct node *n, const struct raft_ready *rd)
{
	uint64_t ci = mvcc_consistent_index(c->mvcc);
	uint64_t last = rd->n_committed ? rd->committed[rd->n_committed - 1].index : 0;
	if (last <= ci)
		return;
	int rv = mvcc_begin(c->mvcc, c->wsession);
	if (rv != DB_OK)
		node_fatal("apply begin", db_strerror(rv));
	size_t bytes = 0;
	for (size_t i = 0; i < rd->n_committed; i++) {
		if (rd->committed[i].index <= ci)
			continue;
		apply_entry(c, n, &rd->committed[i]);
		bytes += rd->committed[i].len;
		/* Nothing keeps an unpacked request past its entry's apply: a
		 * long batch (a replay, a follower catching up) frees as it goes. */
		if (n->unpacked.cap >= UNPACKED_MAX)
			arena_free(&n->unpacked);
	}
	snap_serve_applied(c, last);
	rv = mvcc_commit(c->mvcc, c->wsession, last, 0);
	if (rv != DB_OK)
		node_fatal("apply commit", db_strerror(rv));
	arena_free(&n->unpacked);
	atomic_fetch_add(&c->requests, rd->n_committed);
	checkpointer_applied(c, bytes);
	n->applied_any = true;
}

/* ---- linearizable reads ---- */

static void reads_resolve(struct core *c, struct node *n, const struct raft_ready *rd)
{
	for (size_t i = 0; i < rd->n_read_states; i++)
		for (struct read_wait *w = n->reads; w; w = w->next)
			if (w->ctx == rd->read_states[i].ctx && w->index == 0)
				w->index = rd->read_states[i].index;
	uint64_t applied = mvcc_consistent_index(c->mvcc);
	for (struct read_wait **pw = &n->reads; *pw;) {
		struct read_wait *w = *pw;
		if (w->index == 0 || w->index > applied) {
			pw = &w->next;
			continue;
		}
		*pw = w->next;
		w->next = n->reads_ready;
		n->reads_ready = w;
	}
}

/* Ask one read-index round for every read without an index that is new
 * or whose last round got no answer (lost with a leader change). */
static void reads_ask(struct core *c, struct node *n, int64_t now)
{
	bool ask = false;
	for (struct read_wait *w = n->reads; w && !ask; w = w->next)
		ask = w->index == 0 && (w->ctx == 0 || now - w->asked_ns >= READ_RETRY_NS);
	if (!ask)
		return;
	uint64_t ctx = ++n->read_ctx;
	if (raft_read_index(c->raft, ctx) != 0)
		return; /* no leader yet: asked again later, until the deadline */
	for (struct read_wait *w = n->reads; w; w = w->next)
		if (w->index == 0 && (w->ctx == 0 || now - w->asked_ns >= READ_RETRY_NS)) {
			w->ctx = ctx;
			w->asked_ns = now;
		}
}

static void reads_expire(struct node *n, int64_t now)
{
	for (struct read_wait **pw = &n->reads; *pw;) {
		struct read_wait *w = *pw;
		if (w->deadline_ns > now) {
			pw = &w->next;
			continue;
		}
		*pw = w->next;
		w->ctx = UINT64_MAX; /* marks the timeout for the responder */
		w->next = n->reads_ready;
		n->reads_ready = w;
	}
}

/* ---- leader transfer ---- */

void node_transfer_start(struct core *c, struct node_op *op)
{
	struct node *n = c->node;
	struct node_transfer *t = (struct node_transfer *)op;
	int rv = raft_transfer_leader(c->raft, t->target);
	if (rv != 0) {
		t->done(t->arg, rv == RAFT_NOTLEADER ? CORE_ENOT_LEADER : CORE_EBAD_TRANSFEREE);
		return;
	}
	t->deadline_ns = node_now_ns() + n->req_timeout_ns;
	t->next = n->transfers;
	n->transfers = t;
}

/* Finish transfers whose target leads now (leader known) or that ran out
 * of time (now != 0). */
static void transfers_check(struct node *n, uint64_t leader, int64_t now)
{
	for (struct node_transfer **pt = &n->transfers; *pt;) {
		struct node_transfer *t = *pt;
		int err = -1;
		if (leader != 0 && leader == t->target)
			err = CORE_OK;
		else if (now != 0 && t->deadline_ns <= now)
			err = CORE_ETRANSFER_TIMEOUT;
		if (err < 0) {
			pt = &t->next;
			continue;
		}
		*pt = t->next;
		t->done(t->arg, err);
	}
}

static void transfers_expire(struct core *c, struct node *n, int64_t now)
{
	(void)c;
	transfers_check(n, 0, now);
}

/* ---- waits for an applied index ---- */

void node_wait_applied(struct core *c, struct node_wait *w)
{
	struct node *n = c->node;
	w->deadline_ns = node_now_ns() + n->req_timeout_ns;
	w->next = n->waits;
	n->waits = w;
}

/* Finish waits reached by applied (or the stored log), or (now != 0) past
 * their deadline. A done callback may add a wait. */
static void waits_check(struct core *c, struct node *n, uint64_t applied, int64_t now)
{
	uint64_t stored = atomic_load(&c->last_index);
	for (struct node_wait **pw = &n->waits; *pw;) {
		struct node_wait *w = *pw;
		int err = w->index <= (w->stored ? stored : applied) ? CORE_OK
			  : (now != 0 && w->deadline_ns <= now) ? CORE_ETIMEOUT
								 : -1;
		if (err < 0) {
			pw = &w->next;
			continue;
		}
		*pw = w->next;
		w->done(c, w, err);
	}
}

int node_propose_internal(struct core *c, Metadpb__InternalRequest *req, uint64_t *index)
{
	req->id = atomic_fetch_add(&c->next_req_id, 1);
	req->origin = c->member_id;
	size_t len = metadpb__internal_request__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return RAFT_NOMEM;
	metadpb__internal_request__pack(req, buf);
	struct raft_buffer b = {buf, len};
	int rv = raft_propose(c->raft, &b, 1, index);
	free(buf);
	return rv;
}

/* ---- roles ---- */

static const char *role_name(enum raft_role r)
{
	switch (r) {
	case RAFT_LEADER:
		return "leader";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_PRECANDIDATE:
		return "pre-candidate";
	default:
		return "follower";
	}
}

static void soft_state(struct core *c, struct node *n, const struct raft_ready *rd)
{
	struct raft_status st;
	raft_status(c->raft, &st);
	atomic_store(&c->term, st.term);
	atomic_store(&c->commit_index, st.commit);
	if (!rd->soft_changed)
		return;
	if (rd->role != n->role)
		core_log("info", "%llx became %s at term %llu", (unsigned long long)n->self,
			 role_name(rd->role), (unsigned long long)st.term);
	if (rd->leader != n->leader) {
		if (rd->leader != 0)
			core_log("info", "raft.node: %llx elected leader %llx at term %llu",
				 (unsigned long long)n->self, (unsigned long long)rd->leader,
				 (unsigned long long)st.term);
		else
			core_log("info", "raft.node: %llx lost leader %llx at term %llu",
				 (unsigned long long)n->self, (unsigned long long)n->leader,
				 (unsigned long long)st.term);
		if (rd->leader != 0)
			atomic_fetch_add(&c->leader_changes, 1);
	}
	transfers_check(n, rd->leader, 0);
	bool was_leader = n->role == RAFT_LEADER;
	n->role = rd->role;
	n->leader = rd->leader;
	atomic_store(&c->leader, rd->leader);
	atomic_store(&c->is_leader, rd->role == RAFT_LEADER);
	const struct raft_conf *conf = raft_conf(c->raft);
	atomic_store(&c->alone, rd->role == RAFT_LEADER && conf->n_voters == 1);
	if (rd->role == RAFT_LEADER && !was_leader)
		lessor_promote(c->lessor);
	if (rd->leader != 0 && !n->publishing) {
		n->publishing = true;
		publish(c);
	}
}

/* ---- the cycle ---- */

/* Take a snapshot once enough is durable: the store itself is the snapshot
 * (checkpointed up to durable_index), so Raft keeps only the log after it
 * (plus etcd's catch-up entries for followers that lag a little; one
 * further behind is sent the store, snap_fetch.c). */
static void maybe_snapshot(struct core *c, struct node *n)
{
	uint64_t durable = atomic_load(&c->durable_index);
	struct raft_status st;
	raft_status(c->raft, &st);
	if (st.applied >= st.snapshot_index + n->snapshot_count &&
	    durable < st.snapshot_index + n->snapshot_count && n->ckpt_asked <= st.snapshot_index) {
		/* Due by count (etcd's rule) but the store on disk is behind:
		 * a checkpoint first, not up to 30 s later. */
		n->ckpt_asked = st.applied;
		checkpointer_soon(c);
	}
	if (durable <= st.snapshot_index || durable - st.snapshot_index < n->snapshot_count ||
	    durable > st.applied)
		return;
	core_log("info", "triggering snapshot (local-member-id %llx, applied-index %llu, "
			 "snapshot-index %llu, snapshot-count %llu)",
		 (unsigned long long)n->self, (unsigned long long)st.applied,
		 (unsigned long long)durable, (unsigned long long)n->snapshot_count);
	if (raft_snapshot_taken(c->raft, durable, NULL, 0, n->catchup_entries) != 0)
		return;
	struct raft_snapshot_meta meta;
	raft_snapshot_get(c->raft, &meta);
	atomic_store(&c->snap_index, meta.index);
	int rv = db_txn_begin(c->wsession);
	if (rv == DB_OK)
		rv = node_save_snapshot_meta(c->wsession, &meta);
	if (rv == DB_OK)
		rv = rlog_compact(c->wsession, meta.index + 1);
	if (rv == DB_OK)
		rv = db_txn_commit(c->wsession, 0);
	else
		db_txn_abort(c->wsession);
	if (rv != DB_OK)
		core_log("warn", "log compaction at %llu: %s", (unsigned long long)meta.index,
			 db_strerror(rv));
	else if (meta.index > n->catchup_entries)
		core_log("info", "compacted Raft logs (compact-index %llu)",
			 (unsigned long long)(meta.index - n->catchup_entries));
}

static void propose(struct core *c, struct node *n, struct proposal *props, size_t count,
		    int64_t now)
{
	if (count > n->bufs_cap) {
		struct raft_buffer *b = realloc(n->bufs, count * 2 * sizeof(*b));
		if (b == NULL)
			node_fatal("propose", "out of memory");
		n->bufs = b;
		n->bufs_cap = count * 2;
	}
	size_t i = 0;
	for (struct proposal *p = props; p; p = p->next, i++)
		n->bufs[i] = (struct raft_buffer){p->data, p->len};
	uint64_t index = 0, term = 0;
	int rv = raft_propose(c->raft, n->bufs, count, &index);
	if (rv == 0 && index != 0 && raft_log_term(c->raft, index, &term) != 0)
		index = 0; /* forwarded to the leader: applied from the entry */
	for (struct proposal *p = props, *next; p; p = next, index += index != 0) {
		next = p->next;
		free(p->data);
		p->data = NULL;
		if (rv != 0) {
			/* etcd's raft drops a proposal it cannot take (no leader, a
			 * transfer under way) and the server answers with its error. */
			fail(n, p, rv == RAFT_NOMEM ? CORE_ENOMEM : CORE_EPROPOSAL_DROPPED);
			continue;
		}
		p->deadline_ns = now + n->req_timeout_ns;
		pending_put(n, p);
		if (p->kept && index != 0)
			local_push(n, index, term, p->id);
	}
}

void node_cycle(struct core *c, struct node_in *in)
{
	struct node *n = c->node;
	int64_t now = node_now_ns();
	while (in->msgs != NULL) {
		struct inmsg *m = in->msgs;
		in->msgs = m->next;
		if (m->m.type == RAFT_MSG_SNAP) {
			snap_fetch_or_step(c, &m->m); /* takes the message */
		} else {
			(void)raft_step(c->raft, &m->m);
			raft_message_release(&m->m);
		}
		free(m);
	}
	for (int i = 0; i < in->ticks; i++)
		raft_tick(c->raft);
	if (in->ticks > 0) {
		expire_pending(n, now);
		reads_expire(n, now);
		transfers_expire(c, n, now);
		waits_check(c, n, 0, now);
		forward_expire(c, now);
	}
	while (in->ops != NULL) {
		struct node_op *op = in->ops;
		in->ops = op->next;
		op->fn(c, op);
	}
	if (in->props != NULL)
		propose(c, n, in->props, in->n, now);
	struct read_wait *reads = in->reads;
	while (reads != NULL) {
		struct read_wait *w = reads;
		reads = w->next;
		w->ctx = 0;
		w->index = 0;
		w->deadline_ns = now + n->req_timeout_ns;
		w->next = n->reads;
		n->reads = w;
	}
	if (n->reads != NULL)
		reads_ask(c, n, now);

	struct raft_ready rd;
	while (raft_ready(c->raft, &rd)) {
		/* A leader's appends go out before its own synced write, so
		 * the followers' disks and ours work at once (send_first). */
		if (rd.send_first)
			send_all(c, n, &rd);
		persist(c, n, &rd);
		if (!rd.send_first)
			send_all(c, n, &rd);
		apply_all(c, n, &rd);
		soft_state(c, n, &rd);
		raft_advance(c->raft);
		reads_resolve(c, n, &rd);
		node_conf_sync(c, n);
		if (n->waits != NULL)
			waits_check(c, n, mvcc_consistent_index(c->mvcc), 0);
	}
	maybe_snapshot(c, n);
	/* A new member starts with an empty store, and a log that no longer
	 * starts at 1 cannot bring it up: it will fetch the store. Making the
	 * file now, once the addition is committed in the store, means much of
	 * it is dumped by the time the member has started and asks (a 1M-key
	 * learner: ~0.3 s of start-up, plus the operator's time). */
	if (n->member_added) {
		n->member_added = false;
		struct raft_status st;
		raft_status(c->raft, &st);
		if (st.role == RAFT_LEADER && st.first_index > 1 && c->peers != NULL)
			snap_prefetch(c);
	}

	if (n->done_head != NULL) {
		responder_submit(c, n->done_head, n->n_done);
		n->done_head = n->done_tail = NULL;
		n->n_done = 0;
	}
	if (n->reads_ready != NULL) {
		responder_reads(c, n->reads_ready);
		n->reads_ready = NULL;
	}
	if (n->applied_any) {
		n->applied_any = false;
		/* After the replies are on their way: waking the hub is not on a
		 * client's path. The hub reads the new revisions itself. */
		watch_notify(c);
	}
}

bool node_alone(struct core *c)
{
	return atomic_load(&c->alone);
}

void node_recv(void *arg, uint64_t from, const uint8_t *data, size_t len)
{
	struct core *c = arg;
	if (len == 0)
		return;
	if (data[0] == PEER_KIND_REMOVED) {
		/* A member of our configuration says we were removed: the
		 * entry that removed us may never reach us (the leader stops
		 * replicating to a removed member), so this is how we learn. */
		if (members_in_conf(&c->members, from) && !atomic_load(&c->removed)) {
			core_log("warn", "the member has been permanently removed from the cluster");
			atomic_store(&c->removed, true);
		}
		return;
	}
	if (data[0] == PEER_KIND_RAFT && members_was_removed(&c->members, from)) {
		uint8_t kind = PEER_KIND_REMOVED;
		if (c->peers != NULL)
			peer_send(c->peers, from, &kind, 1);
		return;
	}
	if (data[0] != PEER_KIND_RAFT) {
		forward_recv(c, from, data[0], data + 1, len - 1);
		return;
	}
	struct inmsg *m = malloc(sizeof(*m));
	if (m == NULL)
		return;
	if (raft_msg_decode(data + 1, len - 1, &m->m) != 0 || m->m.from != from) {
		free(m);
		return; /* malformed or forged sender: dropped */
	}
	writer_deliver(c, m);
}

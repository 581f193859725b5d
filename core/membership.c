/*
 * core/membership.c — MemberAdd, MemberRemove, MemberPromote, MemberUpdate.
 *
 * The leader decides membership changes, one at a time (raft/README.md:
 * single-server changes), so a member that is not the leader forwards the
 * request to it (core/forward.c) and relays its answer. On the leader the
 * change runs on the node's thread: etcd's checks against the configuration
 * in force, then the Raft conf change entry and, for an addition, a normal
 * entry with the new member's record (peer URLs) right after it; the answer
 * goes out once this member has applied the last of them. Every member
 * applies the record (member list, peer transport); a removal drops the
 * member's record when its conf change entry is applied (node.c).
 * MemberUpdate changes no configuration: it is an ordinary write.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core_internal.h"
#include "core/peer.h"

enum { OP_ADD, OP_REMOVE, OP_PROMOTE };

struct member_op {
	struct node_op op; /* first: queued to the node */
	struct node_wait wait;
	struct core *c;
	int kind;
	Metadpb__PeerCall *call; /* the request, unpacked (owned) */
	Etcdserverpb__Member added;
	bool lone; /* a lone member's second voter: its record first (do_add) */
	core_done_fn cb;
	void *arg;
};

/* ---- replies ---- */

static void *arena_pb_alloc(void *data, size_t size)
{
	return arena_alloc(data, size);
}

static void arena_pb_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr; /* freed with the arena */
}

ProtobufCMessage *reply_unpack(struct reply *r, const ProtobufCMessageDescriptor *d,
			       const uint8_t *buf, size_t len)
{
	ProtobufCAllocator alloc = {arena_pb_alloc, arena_pb_free, &r->arena};
	return protobuf_c_message_unpack(d, &alloc, len, buf);
}

/* The answer of a membership request: header and the member list as it is
 * now (kind: the InternalRequest or PeerCall case it answers). */
int member_reply(struct core *c, struct reply *r, int kind, uint64_t added)
{
	size_t len = 0;
	uint8_t *buf = members_pack(&c->members, &len);
	Etcdserverpb__MemberListResponse *l =
		buf ? (Etcdserverpb__MemberListResponse *)reply_unpack(
			      r, &etcdserverpb__member_list_response__descriptor, buf, len)
		    : NULL;
	free(buf);
	Etcdserverpb__ResponseHeader *h = reply_header(c, r, 0);
	if (l == NULL || h == NULL)
		return CORE_ENOMEM;
	h->revision = 0; /* ETCD-COMPAT: as MemberList's (core/cluster.c) */
/* Every membership response is {header, members}; MemberAdd's also names
 * the added member. One allocation and fill for the four types. */
#define LIST_RESPONSE(type, init, m)                                   \
	type *m = arena_alloc(&r->arena, sizeof(*m));                  \
	if (m == NULL)                                                 \
		return CORE_ENOMEM;                                    \
	init(m);                                                       \
	m->header = h, m->members = l->members, m->n_members = l->n_members
	ProtobufCMessage *msg;
	switch (kind) {
	case METADPB__INTERNAL_REQUEST__REQUEST_MEMBER_UPDATE: {
		LIST_RESPONSE(Etcdserverpb__MemberUpdateResponse,
			      etcdserverpb__member_update_response__init, m);
		msg = &m->base;
		break;
	}
	case METADPB__PEER_CALL__BODY_MEMBER_ADD: {
		LIST_RESPONSE(Etcdserverpb__MemberAddResponse, etcdserverpb__member_add_response__init,
			      m);
		for (size_t i = 0; i < l->n_members; i++)
			if (l->members[i]->id == added)
				m->member = l->members[i];
		if (m->member == NULL) /* etcdctl prints it: never leave it out */
			return CORE_EINTERNAL;
		msg = &m->base;
		break;
	}
	case METADPB__PEER_CALL__BODY_MEMBER_REMOVE: {
		LIST_RESPONSE(Etcdserverpb__MemberRemoveResponse,
			      etcdserverpb__member_remove_response__init, m);
		msg = &m->base;
		break;
	}
	default: {
		LIST_RESPONSE(Etcdserverpb__MemberPromoteResponse,
			      etcdserverpb__member_promote_response__init, m);
		msg = &m->base;
		break;
	}
	}
#undef LIST_RESPONSE
	r->pub.msg = msg;
	return CORE_OK;
}

/* ---- applying records (every member, inside the apply transaction) ---- */

int apply_member_change(struct core *c, const Metadpb__InternalRequest *req)
{
	const Etcdserverpb__Member *in = req->request_case == METADPB__INTERNAL_REQUEST__REQUEST_MEMBER_ADD
						 ? req->member_add
						 : req->member_update;
	Etcdserverpb__Member *cur = NULL;
	Etcdserverpb__Member mb;
	if (req->request_case == METADPB__INTERNAL_REQUEST__REQUEST_MEMBER_UPDATE) {
		/* etcd's checks, here where every member decides alike. */
		if (!members_get(&c->members, in->id, &cur))
			return CORE_EMEMBER_NOT_FOUND;
		if (members_urls_taken(&c->members, in->peerurls, in->n_peerurls, in->id)) {
			members_free_member(cur);
			return CORE_EPEER_URL_EXISTS;
		}
		mb = *cur;
		mb.n_peerurls = in->n_peerurls;
		mb.peerurls = in->peerurls;
	} else {
		mb = *in;
	}
	int rv = members_put(&c->members, c->wsession, &mb);
	members_free_member(cur);
	if (rv != DB_OK)
		return rv == DB_NOMEM ? CORE_ENOMEM : CORE_EINTERNAL;
	/* The transport runs from the start (core.c core_peers_start). */
	if (in->id != c->member_id && c->peers != NULL)
		(void)peer_set(c->peers, in->id, (const char *const *)in->peerurls, in->n_peerurls);
	return CORE_OK;
}

/* ---- on the leader, node thread ---- */

static void finish(struct member_op *mo, int err)
{
	struct reply *r = reply_new();
	if (r == NULL) {
		reply_fail(mo->cb, mo->arg, CORE_ENOMEM);
	} else {
		if (err == CORE_OK)
			err = member_reply(mo->c, r, mo->call->body_case, mo->added.id);
		reply_done(r, err, r->pub.msg, mo->cb, mo->arg);
	}
	metadpb__peer_call__free_unpacked(mo->call, NULL);
	free(mo);
}

static void applied(struct core *c, struct node_wait *w, int err)
{
	(void)c;
	struct member_op *mo = (struct member_op *)((char *)w - offsetof(struct member_op, wait));
	finish(mo, err);
}

static int raft_err(int rv)
{
	switch (rv) {
	case RAFT_NOTLEADER:
	case RAFT_NOLEADER:
		return CORE_ENOT_LEADER;
	case RAFT_CONFPENDING:
	case RAFT_NOTREADY:
	case RAFT_TRANSFERRING:
		/* etcd serialises changes and waits; one in flight here means
		 * the cluster is not ready for another yet. */
		return CORE_EUNHEALTHY;
	case RAFT_TOOBIG:
		return CORE_ETOO_MANY_LEARNERS;
	case RAFT_UNKNOWNPEER:
		return CORE_EMEMBER_NOT_FOUND;
	case RAFT_NOMEM:
		return CORE_ENOMEM;
	default:
		return CORE_EINTERNAL;
	}
}

/* A lone member's second voter: its record is applied, the change follows.
 * A crash between the two leaves a record that no list shows (they show
 * the configuration in force) and whose peer URLs stay free to add again. */
static void lone_record_applied(struct core *c, struct node_wait *w, int err)
{
	struct member_op *mo = (struct member_op *)((char *)w - offsetof(struct member_op, wait));
	if (err == CORE_OK && (!atomic_load(&c->is_leader) || atomic_load(&c->removed)))
		err = CORE_ENOT_LEADER;
	if (err == CORE_OK && raft_conf(c->raft)->n_voters != 1)
		err = CORE_EUNHEALTHY; /* another change came first */
	uint64_t ci = 0;
	if (err == CORE_OK) {
		int rv = raft_propose_conf_change(c->raft, RAFT_CC_ADD_VOTER, mo->added.id, &ci);
		if (rv != 0)
			err = raft_err(rv);
	}
	if (err != CORE_OK) {
		finish(mo, err);
		return;
	}
	core_log("info", "added member %llx to cluster %llx", (unsigned long long)mo->added.id,
		 (unsigned long long)c->cluster_id);
	mo->wait.index = ci;
	mo->wait.stored = true;
	mo->wait.done = applied;
	node_wait_applied(c, &mo->wait);
}

/* Voters that have started (published themselves) and are reachable. */
static uint32_t started_voters(struct core *c, const struct raft_conf *conf, uint64_t except)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < conf->n_voters; i++) {
		uint64_t id = conf->voters[i];
		if (id == except)
			continue;
		if (id == c->member_id ||
		    (members_published(&c->members, id) && c->peers && peer_connected(c->peers, id)))
			n++;
	}
	return n;
}

/* etcd's HealthInterval: a change needs the leader connected to voters
 * for this long (--strict-reconfig-check), so it never counts on a member
 * that has only just come back. */
#define HEALTH_INTERVAL_MS 5000

/* Voters other than except connected to us for HEALTH_INTERVAL_MS. */
static uint32_t healthy_voters(struct core *c, const struct raft_conf *conf, uint64_t except)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < conf->n_voters; i++) {
		uint64_t id = conf->voters[i];
		if (id == except)
			continue;
		if (id == c->member_id ||
		    (c->peers && peer_connected_for_ms(c->peers, id) >= HEALTH_INTERVAL_MS))
			n++;
	}
	return n;
}

static bool urls_valid(char *const *urls, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *u = urls[i];
		const char *host = strncmp(u, "http://", 7) == 0	 ? u + 7
				   : strncmp(u, "https://", 8) == 0 ? u + 8
								    : NULL;
		if (host == NULL || strchr(host, ':') == NULL || host[0] == ':')
			return false;
	}
	return true;
}

static int do_add(struct core *c, struct member_op *mo, uint64_t *index)
{
	const Etcdserverpb__MemberAddRequest *q = mo->call->member_add;
	const struct raft_conf *conf = raft_conf(c->raft);
	if (!urls_valid(q->peerurls, q->n_peerurls))
		return CORE_EMEMBER_BAD_URLS;
	/* etcd's strict reconfig check (mayAddMember), before anything else:
	 * the started voters must still be a quorum of the larger cluster
	 * (except for a lone member's second voter, below), and the leader
	 * must have been connected to every voter for a while. */
	bool lone_voter = !q->islearner && conf->n_voters == 1;
	if (c->cfg.strict_reconfig_check) {
		if (!q->islearner && !lone_voter &&
		    started_voters(c, conf, 0) < (conf->n_voters + 1) / 2 + 1)
			return CORE_ENOT_ENOUGH_STARTED;
		if (healthy_voters(c, conf, 0) < conf->n_voters)
			return CORE_EUNHEALTHY;
	}
	if (members_urls_taken(&c->members, q->peerurls, q->n_peerurls, 0))
		return CORE_EPEER_URL_EXISTS;
	if (q->islearner && conf->n_learners >= 1) /* etcd's --max-learners default */
		return CORE_ETOO_MANY_LEARNERS;
	/* A member added at runtime mixes the time into its id (etcd), so a
	 * re-added peer URL never reuses a removed member's id. */
	uint64_t id = members_id((const char *const *)q->peerurls, q->n_peerurls,
				 c->cfg.cluster_token, (int64_t)time(NULL));
	mo->added.id = id;
	Etcdserverpb__Member mb = ETCDSERVERPB__MEMBER__INIT;
	mb.id = id;
	mb.name = "";
	mb.n_peerurls = q->n_peerurls;
	mb.peerurls = q->peerurls;
	mb.islearner = q->islearner;
	Metadpb__InternalRequest ir = METADPB__INTERNAL_REQUEST__INIT;
	ir.request_case = METADPB__INTERNAL_REQUEST__REQUEST_MEMBER_ADD;
	ir.member_add = &mb;
	/* ETCD-COMPAT: etcd lets a lone member add a second voter
	 * (IsReadyToAddVotingMember's one exception): its change takes effect
	 * when applied, so the lone member commits it alone, and the cluster
	 * waits for the new member from then on. Here Raft's configuration is
	 * in force once appended (the single-server changes of Raft's
	 * dissertation), so the change would need the new member's vote to
	 * commit, while the new member needs the record of itself to find
	 * itself in the list it fetches. So the record goes first, committed
	 * by the lone member alone; the change follows once it is applied
	 * (lone_record_applied), and the answer comes when the change is in
	 * the lone member's log on disk: in force, as etcd's is once applied. */
	if (lone_voter) {
		int rv = node_propose_internal(c, &ir, index);
		if (rv != 0)
			return raft_err(rv);
		mo->lone = true;
		return CORE_OK;
	}
	uint64_t ci;
	int rv = raft_propose_conf_change(c->raft, q->islearner ? RAFT_CC_ADD_LEARNER : RAFT_CC_ADD_VOTER,
					  id, &ci);
	if (rv != 0)
		return raft_err(rv);
	rv = node_propose_internal(c, &ir, index);
	if (rv != 0) {
		*index = ci; /* the member is in; its record could not follow */
		core_log("warn", "member %llx added without its record: %s", (unsigned long long)id,
			 raft_strerror(rv));
	}
	core_log("info", "added member %llx to cluster %llx", (unsigned long long)id,
		 (unsigned long long)c->cluster_id);
	return CORE_OK;
}

static int do_remove(struct core *c, struct member_op *mo, uint64_t *index)
{
	uint64_t id = mo->call->member_remove->id;
	const struct raft_conf *conf = raft_conf(c->raft);
	bool voter = raft_conf_is_voter(conf, id);
	if (!voter && !raft_conf_is_learner(conf, id))
		return CORE_EMEMBER_NOT_FOUND;
	/* etcd's mayRemoveMember: a learner goes freely; removing a voter must
	 * leave a started quorum, and (unless the member is down anyway) enough
	 * voters connected for a while besides it. */
	if (voter && c->cfg.strict_reconfig_check && conf->n_voters > 1) {
		if (started_voters(c, conf, id) < (conf->n_voters - 1) / 2 + 1)
			return CORE_ENOT_ENOUGH_STARTED;
		bool down = id != c->member_id && c->peers && !peer_connected(c->peers, id);
		if (!down && healthy_voters(c, conf, id) < (conf->n_voters - 1) / 2 + 1)
			return CORE_EUNHEALTHY;
	}
	int rv = raft_propose_conf_change(c->raft, RAFT_CC_REMOVE, id, index);
	if (rv == 0)
		core_log("info", "removed member %llx from cluster %llx", (unsigned long long)id,
			 (unsigned long long)c->cluster_id);
	return rv == 0 ? CORE_OK : raft_err(rv);
}

static int do_promote(struct core *c, struct member_op *mo, uint64_t *index)
{
	uint64_t id = mo->call->member_promote->id;
	const struct raft_conf *conf = raft_conf(c->raft);
	if (raft_conf_is_voter(conf, id))
		return CORE_ENOT_LEARNER;
	if (!raft_conf_is_learner(conf, id))
		return CORE_EMEMBER_NOT_FOUND;
	/* etcd: the learner must hold at least 90% of the leader's log. */
	uint64_t mine = 0, its = 0;
	if (raft_match(c->raft, c->member_id, &mine) != 0 || raft_match(c->raft, id, &its) != 0)
		return CORE_ENOT_LEADER;
	if ((double)its < (double)mine * 0.9)
		return CORE_ELEARNER_NOT_READY;
	int rv = raft_propose_conf_change(c->raft, RAFT_CC_PROMOTE, id, index);
	if (rv == 0)
		core_log("info", "promoted learner %llx to voting member", (unsigned long long)id);
	return rv == 0 ? CORE_OK : raft_err(rv);
}

static void run(struct core *c, struct node_op *op)
{
	struct member_op *mo = (struct member_op *)op;
	if (c->raft == NULL || !atomic_load(&c->is_leader) || atomic_load(&c->removed)) {
		finish(mo, CORE_ENOT_LEADER);
		return;
	}
	uint64_t index = 0;
	int err;
	switch (mo->kind) {
	case OP_ADD:
		err = do_add(c, mo, &index);
		break;
	case OP_REMOVE:
		err = do_remove(c, mo, &index);
		break;
	default:
		err = do_promote(c, mo, &index);
		break;
	}
	if (err != CORE_OK) {
		finish(mo, err);
		return;
	}
	mo->wait.index = index;
	mo->wait.done = mo->lone ? lone_record_applied : applied;
	node_wait_applied(c, &mo->wait);
}

/* ---- entry points (any member) ---- */

struct relay {
	struct core *c;
	const ProtobufCMessageDescriptor *desc;
	core_done_fn cb;
	void *arg;
};

/* A follower: the leader's answer, relayed to the client. */
static void relayed(void *arg, const Metadpb__PeerReply *rep, int err)
{
	struct relay *rl = arg;
	struct reply *r = err == CORE_OK ? reply_new() : NULL;
	if (err != CORE_OK) {
		reply_fail(rl->cb, rl->arg, err);
	} else if (r == NULL) {
		reply_fail(rl->cb, rl->arg, CORE_ENOMEM);
	} else {
		ProtobufCMessage *msg = reply_unpack(r, rl->desc, rep->msg.data, rep->msg.len);
		reply_done(r, msg ? CORE_OK : CORE_EINTERNAL, msg, rl->cb, rl->arg);
	}
	free(rl);
}

/* call: owned from here on. */
static void submit(struct core *c, Metadpb__PeerCall *call, const ProtobufCMessageDescriptor *desc,
		   core_done_fn cb, void *arg)
{
	if (!atomic_load(&c->is_leader)) {
		struct relay *rl = malloc(sizeof(*rl));
		int err = CORE_ENOMEM;
		if (rl != NULL) {
			*rl = (struct relay){c, desc, cb, arg};
			err = forward_call(c, call, relayed, rl);
			if (err != CORE_OK)
				free(rl);
		}
		metadpb__peer_call__free_unpacked(call, NULL);
		if (err != CORE_OK)
			reply_fail(cb, arg, err == CORE_ENO_LEADER ? CORE_ENOT_LEADER : err);
		return;
	}
	struct member_op *mo = calloc(1, sizeof(*mo));
	if (mo == NULL) {
		metadpb__peer_call__free_unpacked(call, NULL);
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	mo->op.fn = run;
	mo->c = c;
	mo->call = call;
	mo->kind = call->body_case == METADPB__PEER_CALL__BODY_MEMBER_ADD      ? OP_ADD
		   : call->body_case == METADPB__PEER_CALL__BODY_MEMBER_REMOVE ? OP_REMOVE
									: OP_PROMOTE;
	mo->cb = cb;
	mo->arg = arg;
	writer_op(c, &mo->op);
}

/* A copy of the request as a PeerCall (owned by the caller). */
static Metadpb__PeerCall *as_call(int body, const ProtobufCMessage *req)
{
	Metadpb__PeerCall tmp = METADPB__PEER_CALL__INIT;
	tmp.body_case = body;
	if (body == METADPB__PEER_CALL__BODY_MEMBER_ADD)
		tmp.member_add = (Etcdserverpb__MemberAddRequest *)req;
	else if (body == METADPB__PEER_CALL__BODY_MEMBER_REMOVE)
		tmp.member_remove = (Etcdserverpb__MemberRemoveRequest *)req;
	else
		tmp.member_promote = (Etcdserverpb__MemberPromoteRequest *)req;
	size_t len = metadpb__peer_call__get_packed_size(&tmp);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return NULL;
	metadpb__peer_call__pack(&tmp, buf);
	Metadpb__PeerCall *call = metadpb__peer_call__unpack(NULL, len, buf);
	free(buf);
	return call;
}

static void start(struct core *c, int body, const ProtobufCMessage *req,
		  const ProtobufCMessageDescriptor *desc, core_done_fn cb, void *arg)
{
	Metadpb__PeerCall *call = as_call(body, req);
	if (call == NULL)
		reply_fail(cb, arg, CORE_ENOMEM);
	else
		submit(c, call, desc, cb, arg);
}

void core_member_add(struct core *c, const Etcdserverpb__MemberAddRequest *req, core_done_fn cb,
		     void *arg)
{
	start(c, METADPB__PEER_CALL__BODY_MEMBER_ADD, &req->base,
	      &etcdserverpb__member_add_response__descriptor, cb, arg);
}

void core_member_remove(struct core *c, const Etcdserverpb__MemberRemoveRequest *req,
			core_done_fn cb, void *arg)
{
	start(c, METADPB__PEER_CALL__BODY_MEMBER_REMOVE, &req->base,
	      &etcdserverpb__member_remove_response__descriptor, cb, arg);
}

void core_member_promote(struct core *c, const Etcdserverpb__MemberPromoteRequest *req,
			 core_done_fn cb, void *arg)
{
	start(c, METADPB__PEER_CALL__BODY_MEMBER_PROMOTE, &req->base,
	      &etcdserverpb__member_promote_response__descriptor, cb, arg);
}

void core_member_update(struct core *c, const Etcdserverpb__MemberUpdateRequest *req,
			core_done_fn cb, void *arg)
{
	if (!urls_valid(req->peerurls, req->n_peerurls)) {
		reply_fail(cb, arg, CORE_EMEMBER_BAD_URLS);
		return;
	}
	Etcdserverpb__Member mb = ETCDSERVERPB__MEMBER__INIT;
	mb.id = req->id;
	mb.n_peerurls = req->n_peerurls;
	mb.peerurls = req->peerurls;
	Metadpb__InternalRequest ir = METADPB__INTERNAL_REQUEST__INIT;
	ir.request_case = METADPB__INTERNAL_REQUEST__REQUEST_MEMBER_UPDATE;
	ir.member_update = &mb;
	writer_submit(c, &ir, cb, arg);
}

/* The leader serving a member's forwarded call (forward.c): the answer is
 * packed into reply->msg. */
struct served {
	struct core *c;
	void (*send)(struct core *c, uint64_t to, Metadpb__PeerReply *rep);
	uint64_t to;
	uint64_t call;
};

static void served_done(void *arg, struct core_reply *reply)
{
	struct served *sv = arg;
	Metadpb__PeerReply rep = METADPB__PEER_REPLY__INIT;
	rep.call = sv->call;
	rep.err = reply->err;
	uint8_t *buf = NULL;
	if (reply->err == CORE_OK) {
		size_t len = protobuf_c_message_get_packed_size(reply->msg);
		buf = malloc(len ? len : 1);
		if (buf == NULL) {
			rep.err = CORE_ENOMEM;
		} else {
			protobuf_c_message_pack(reply->msg, buf);
			rep.msg.data = buf;
			rep.msg.len = len;
		}
	}
	sv->send(sv->c, sv->to, &rep);
	free(buf);
	core_reply_free(reply);
	free(sv);
}

void membership_serve(struct core *c, uint64_t from, const Metadpb__PeerCall *call,
		      void (*send)(struct core *c, uint64_t to, Metadpb__PeerReply *rep))
{
	struct served *sv = malloc(sizeof(*sv));
	Metadpb__PeerCall *own = NULL;
	if (sv != NULL) {
		size_t len = metadpb__peer_call__get_packed_size(call);
		uint8_t *buf = malloc(len ? len : 1);
		if (buf != NULL) {
			metadpb__peer_call__pack(call, buf);
			own = metadpb__peer_call__unpack(NULL, len, buf);
			free(buf);
		}
	}
	if (own == NULL) {
		free(sv);
		Metadpb__PeerReply rep = METADPB__PEER_REPLY__INIT;
		rep.call = call->call;
		rep.err = CORE_ENOMEM;
		send(c, from, &rep);
		return;
	}
	*sv = (struct served){c, send, from, call->call};
	if (!atomic_load(&c->is_leader)) { /* leadership moved: never forward twice */
		metadpb__peer_call__free_unpacked(own, NULL);
		reply_fail(served_done, sv, CORE_ENOT_LEADER);
		return;
	}
	submit(c, own, NULL, served_done, sv);
}

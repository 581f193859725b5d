/*
 * core/cluster.c — what the Cluster service and start-up ask of the member
 * list: MemberList and readiness (this member published to the cluster).
 */
#include <stdlib.h>
#include <time.h>

#include "core/core_internal.h"
#include "core/deadline.h"

bool core_removed(struct core *c)
{
	return atomic_load(&c->removed);
}

bool core_is_learner(struct core *c)
{
	return atomic_load(&c->is_learner);
}

bool core_has_leader(struct core *c)
{
	return atomic_load(&c->leader) != 0;
}

bool core_wait_ready(struct core *c, int64_t timeout_ms)
{
	struct timespec until = core_deadline_ns(CLOCK_REALTIME, timeout_ms * 1000000LL);
	pthread_mutex_lock(&c->mu);
	while (!atomic_load(&c->published) &&
	       pthread_cond_timedwait(&c->pcv, &c->mu, &until) == 0)
		;
	bool ok = atomic_load(&c->published);
	pthread_mutex_unlock(&c->mu);
	return ok;
}

static void member_list_now(struct core *c, const ProtobufCMessage *req, core_done_fn cb,
			    void *arg)
{
	(void)req;
	struct reply *r = reply_new();
	size_t len = 0;
	uint8_t *buf = r ? members_pack(&c->members, &len) : NULL;
	Etcdserverpb__MemberListResponse *resp = NULL;
	if (buf != NULL) {
		/* Unpacked into the reply's arena, so it goes with the reply. */
		resp = (Etcdserverpb__MemberListResponse *)reply_unpack(
			r, &etcdserverpb__member_list_response__descriptor, buf, len);
		free(buf);
	}
	if (r == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	if (resp == NULL || (resp->header = reply_header(c, r, 0)) == NULL) {
		reply_done(r, CORE_ENOMEM, NULL, cb, arg);
		return;
	}
	/* ETCD-COMPAT: the Cluster service's header has no revision in etcd
	 * 3.4 and 3.5 (etcd 3.6 adds it, etcd#14026). */
	resp->header->revision = 0;
	reply_done(r, CORE_OK, &resp->base, cb, arg);
}

void core_member_list(struct core *c, const Etcdserverpb__MemberListRequest *req, core_done_fn cb,
		      void *arg)
{
	/* etcd 3.5: linearizable asks for a read-index round first. */
	if (req->linearizable)
		core_linearize(c, &req->base, member_list_now, cb, arg);
	else
		member_list_now(c, &req->base, cb, arg);
}

/* ---- MoveLeader ---- */

struct move {
	struct node_transfer t; /* first: the node's op */
	struct core *c;
	core_done_fn cb;
	void *arg;
};

static void move_done(void *arg, int err)
{
	struct move *mv = arg;
	struct reply *r = err == CORE_OK ? reply_new() : NULL;
	Etcdserverpb__MoveLeaderResponse *resp = r ? arena_alloc(&r->arena, sizeof(*resp)) : NULL;
	if (err != CORE_OK) {
		reply_fail(mv->cb, mv->arg, err);
	} else if (resp == NULL) {
		if (r != NULL)
			reply_done(r, CORE_ENOMEM, NULL, mv->cb, mv->arg);
		else
			reply_fail(mv->cb, mv->arg, CORE_ENOMEM);
	} else {
		/* ETCD-COMPAT: etcd answers MoveLeader with an empty message, no
		 * header (3.4 and 3.5). */
		etcdserverpb__move_leader_response__init(resp);
		reply_done(r, CORE_OK, &resp->base, mv->cb, mv->arg);
	}
	free(mv);
}

void core_move_leader(struct core *c, const Etcdserverpb__MoveLeaderRequest *req, core_done_fn cb,
		      void *arg)
{
	/* etcd answers on the leader only; the transfer itself is the node's. */
	if (!atomic_load(&c->is_leader)) {
		reply_fail(cb, arg, CORE_ENOT_LEADER);
		return;
	}
	struct move *mv = calloc(1, sizeof(*mv));
	if (mv == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	mv->t.op.fn = node_transfer_start;
	mv->t.target = req->targetid;
	mv->t.done = move_done;
	mv->t.arg = mv;
	mv->c = c;
	mv->cb = cb;
	mv->arg = arg;
	writer_op(c, &mv->t.op);
}

/*
 * core/forward.c — asking the leader on a client's behalf.
 *
 * The leader's lessor alone decides when a lease expires, so a keep-alive or
 * a time-to-live query that reaches a follower is forwarded to the leader,
 * as etcd does. Calls and replies travel on the peer transport next to Raft
 * messages: every payload starts with one kind byte (node.c sends Raft
 * messages as PEER_KIND_RAFT), followed by a protobuf PeerCall or PeerReply.
 * A call not answered within etcd's request timeout fails with
 * "etcdserver: request timed out"; pending calls are few (one per client
 * keep-alive in flight), so a list is enough.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"
#include "core/lease_internal.h"
#include "core/peer.h"

struct fwd_call {
	struct fwd_call *next;
	uint64_t id;
	int64_t deadline_ns;
	forward_done_fn done;
	void *arg;
};

struct forward {
	pthread_mutex_t mu;
	struct fwd_call *calls;
	uint64_t next_id;
	bool stopped;
};

int forward_open(struct core *c)
{
	struct forward *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return DB_NOMEM;
	pthread_mutex_init(&f->mu, NULL);
	f->next_id = 1;
	c->fwd = f;
	return DB_OK;
}

static void finish_all(struct fwd_call *list, int err)
{
	while (list != NULL) {
		struct fwd_call *fc = list;
		list = fc->next;
		fc->done(fc->arg, NULL, err);
		free(fc);
	}
}

void forward_close(struct core *c)
{
	struct forward *f = c->fwd;
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	struct fwd_call *left = f->calls;
	f->calls = NULL;
	f->stopped = true;
	pthread_mutex_unlock(&f->mu);
	finish_all(left, CORE_ESTOPPED);
	pthread_mutex_destroy(&f->mu);
	free(f);
	c->fwd = NULL;
}

/* kind byte + packed message, to one member. */
static bool send_to(struct core *c, uint64_t to, uint8_t kind, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t stackbuf[256];
	uint8_t *buf = len + 1 <= sizeof(stackbuf) ? stackbuf : malloc(len + 1);
	if (buf == NULL)
		return false;
	buf[0] = kind;
	protobuf_c_message_pack(msg, buf + 1);
	bool ok = c->peers != NULL && peer_send(c->peers, to, buf, len + 1);
	if (buf != stackbuf)
		free(buf);
	return ok;
}

int forward_call(struct core *c, Metadpb__PeerCall *call, forward_done_fn done, void *arg)
{
	struct forward *f = c->fwd;
	uint64_t leader = atomic_load(&c->leader);
	if (leader == 0 || leader == c->member_id)
		return CORE_ENO_LEADER;
	struct fwd_call *fc = calloc(1, sizeof(*fc));
	if (fc == NULL)
		return CORE_ENOMEM;
	fc->done = done;
	fc->arg = arg;
	fc->deadline_ns = node_now_ns() + c->req_timeout_ns;
	pthread_mutex_lock(&f->mu);
	if (f->stopped) {
		pthread_mutex_unlock(&f->mu);
		free(fc);
		return CORE_ESTOPPED;
	}
	fc->id = call->call = f->next_id++;
	fc->next = f->calls;
	f->calls = fc;
	pthread_mutex_unlock(&f->mu);
	/* Not sent (queue full, leader unknown to the transport): the call
	 * times out like one whose reply was lost. */
	(void)send_to(c, leader, PEER_KIND_CALL, &call->base);
	return CORE_OK;
}

void forward_expire(struct core *c, int64_t now)
{
	struct forward *f = c->fwd;
	struct fwd_call *expired = NULL;
	pthread_mutex_lock(&f->mu);
	for (struct fwd_call **pp = &f->calls; *pp;) {
		struct fwd_call *fc = *pp;
		if (fc->deadline_ns > now) {
			pp = &fc->next;
			continue;
		}
		*pp = fc->next;
		fc->next = expired;
		expired = fc;
	}
	pthread_mutex_unlock(&f->mu);
	finish_all(expired, CORE_ETIMEOUT);
}

static void send_reply(struct core *c, uint64_t to, Metadpb__PeerReply *rep)
{
	(void)send_to(c, to, PEER_KIND_REPLY, &rep->base);
}

/* Leader side: answer a member's call. */
static void serve(struct core *c, uint64_t from, const Metadpb__PeerCall *call)
{
	switch (call->body_case) {
	case METADPB__PEER_CALL__BODY_MEMBER_ADD:
	case METADPB__PEER_CALL__BODY_MEMBER_REMOVE:
	case METADPB__PEER_CALL__BODY_MEMBER_PROMOTE:
		membership_serve(c, from, call, send_reply);
		return;
	default:
		break;
	}
	Metadpb__PeerReply rep = METADPB__PEER_REPLY__INIT;
	rep.call = call->call;
	if (!atomic_load(&c->is_leader)) {
		rep.err = CORE_ENO_LEADER; /* leadership moved: the caller retries */
	} else if (call->body_case == METADPB__PEER_CALL__BODY_KEEPALIVE) {
		rep.ttl = core_lease_renew(c, call->keepalive);
	} else if (call->body_case == METADPB__PEER_CALL__BODY_TIME_TO_LIVE) {
		rep.found = lessor_ttl(c->lessor, call->time_to_live, &rep.ttl, &rep.granted_ttl);
	} else {
		rep.err = CORE_EINTERNAL;
	}
	(void)send_to(c, from, PEER_KIND_REPLY, &rep.base);
}

static void answer(struct core *c, const Metadpb__PeerReply *rep)
{
	struct forward *f = c->fwd;
	struct fwd_call *fc = NULL;
	pthread_mutex_lock(&f->mu);
	for (struct fwd_call **pp = &f->calls; *pp; pp = &(*pp)->next)
		if ((*pp)->id == rep->call) {
			fc = *pp;
			*pp = fc->next;
			break;
		}
	pthread_mutex_unlock(&f->mu);
	if (fc == NULL)
		return; /* timed out already */
	fc->done(fc->arg, rep->err == CORE_OK ? rep : NULL, rep->err);
	free(fc);
}

void forward_recv(struct core *c, uint64_t from, uint8_t kind, const uint8_t *data, size_t len)
{
	if (kind == PEER_KIND_CALL) {
		Metadpb__PeerCall *call = metadpb__peer_call__unpack(NULL, len, data);
		if (call != NULL) {
			serve(c, from, call);
			metadpb__peer_call__free_unpacked(call, NULL);
		}
	} else if (kind == PEER_KIND_REPLY) {
		Metadpb__PeerReply *rep = metadpb__peer_reply__unpack(NULL, len, data);
		if (rep != NULL) {
			answer(c, rep);
			metadpb__peer_reply__free_unpacked(rep, NULL);
		}
	}
}

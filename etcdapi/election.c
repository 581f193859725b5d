/*
 * etcdapi/election.c — the Election service (v3electionpb). Observe is a
 * server stream fed by core's observer until the client goes away.
 */
#include <pthread.h>
#include <stdlib.h>

#include "etcdapi/authz.h"
#include "etcdapi/stream.h"
#include "etcdapi/stream_methods.h"

#include "v3election.pb-c.h"

static void *campaign_start(struct core *c, const ProtobufCMessage *req, core_done_fn cb,
			    void *arg)
{
	return core_campaign(c, (const V3electionpb__CampaignRequest *)req, cb, arg);
}

static void campaign_cancel(void *op)
{
	core_campaign_cancel(op);
}

static void campaign(struct api_call *call, const ProtobufCMessage *req)
{
	const V3electionpb__CampaignRequest *q = (const V3electionpb__CampaignRequest *)req;
	if (!api_authz_recipe_lease(call, &q->name, q->lease))
		return;
	api_longpoll(call, req, campaign_start, campaign_cancel); /* core keeps the caller */
	api_authz_end();
}

/* Proclaim and Resign act on the campaign's own key (a missing leader is
 * core's to answer). */
static bool leader_key_allowed(struct api_call *call, const V3electionpb__LeaderKey *l)
{
	return l == NULL || api_authz_recipe(call, NULL, 0, false, l->key.data, l->key.len, true);
}

static void proclaim(struct api_call *call, const ProtobufCMessage *req)
{
	if (!leader_key_allowed(call, ((const V3electionpb__ProclaimRequest *)req)->leader))
		return;
	core_proclaim(api_core(call), (const V3electionpb__ProclaimRequest *)req, api_concurrency_done,
		      call);
	api_authz_end();
}

static void leader(struct api_call *call, const ProtobufCMessage *req)
{
	const V3electionpb__LeaderRequest *q = (const V3electionpb__LeaderRequest *)req;
	if (!api_authz_recipe(call, q->name.data, q->name.len, true, NULL, 0, false))
		return;
	core_leader(api_core(call), (const V3electionpb__LeaderRequest *)req, api_concurrency_done,
		    call);
}

static void resign(struct api_call *call, const ProtobufCMessage *req)
{
	if (!leader_key_allowed(call, ((const V3electionpb__ResignRequest *)req)->leader))
		return;
	core_resign(api_core(call), (const V3electionpb__ResignRequest *)req, api_concurrency_done,
		    call);
	api_authz_end();
}

/* ---- Observe ---- */

struct observer {
	struct api_stream *st;
	struct core_observe *o;
	pthread_mutex_t mu; /* orders core_observe_stop against core's last call */
	bool core_done;
};

static void on_leader(void *arg, const V3electionpb__LeaderResponse *resp)
{
	struct observer *ob = arg;
	if (resp != NULL) {
		api_stream_send_msg(ob->st, &resp->base);
		return;
	}
	pthread_mutex_lock(&ob->mu);
	ob->core_done = true;
	pthread_mutex_unlock(&ob->mu);
	api_stream_finish(ob->st, GRPC_STATUS_OK, NULL);
	api_stream_unref(ob->st); /* core's reference */
}

static void ob_recv_end(struct api_stream *st, bool eof)
{
	(void)eof;
	struct observer *ob = st->owner;
	/* The call is over (client gone or server stopping). */
	pthread_mutex_lock(&ob->mu);
	if (!ob->core_done && ob->o != NULL)
		core_observe_stop(ob->o);
	pthread_mutex_unlock(&ob->mu);
}

static void ob_release(struct api_stream *st)
{
	struct observer *ob = st->owner;
	pthread_mutex_destroy(&ob->mu);
	free(ob);
}

static const struct api_stream_ops ob_ops = {NULL, ob_recv_end, NULL, ob_release, false};

static void observe(struct api_call *call, const ProtobufCMessage *req)
{
	const V3electionpb__LeaderRequest *q = (const V3electionpb__LeaderRequest *)req;
	if (api_authz_recipe_err(call, q->name.data, q->name.len, true, NULL, 0, false) != CORE_OK) {
		/* etcd's Observe ends, without a word, when its first read fails. */
		api_finish_status(call, GRPC_STATUS_OK, NULL);
		return;
	}
	struct observer *ob = calloc(1, sizeof(*ob));
	if (ob == NULL) {
		api_finish_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
		return;
	}
	pthread_mutex_init(&ob->mu, NULL);
	struct core *core = api_core(call);
	/* api_stream_open takes the call; req lives in it until the stream goes. */
	ob->st = api_stream_open(call, &ob_ops, ob, false);
	if (ob->st == NULL) {
		pthread_mutex_destroy(&ob->mu);
		free(ob);
		return;
	}
	api_stream_ref(ob->st); /* core's, dropped at its last call */
	pthread_mutex_lock(&ob->mu);
	ob->o = core_observe_start(core, (const V3electionpb__LeaderRequest *)req, on_leader, ob);
	bool failed = ob->o == NULL;
	pthread_mutex_unlock(&ob->mu);
	if (failed) {
		api_stream_finish(ob->st, GRPC_STATUS_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
		api_stream_unref(ob->st);
	}
	api_stream_unref(ob->st); /* the handler's */
}

struct api_method api_election_methods[] = {
	{"/v3electionpb.Election/Campaign", &v3electionpb__campaign_request__descriptor, campaign, 0,
	 4, NULL, 0},
	{"/v3electionpb.Election/Proclaim", &v3electionpb__proclaim_request__descriptor, proclaim, 0,
	 2, NULL, 0},
	{"/v3electionpb.Election/Leader", &v3electionpb__leader_request__descriptor, leader, 0, 2,
	 NULL, 0},
	{"/v3electionpb.Election/Observe", &v3electionpb__leader_request__descriptor, observe, 0, 2,
	 NULL, 1},
	{"/v3electionpb.Election/Resign", &v3electionpb__resign_request__descriptor, resign, 0, 2,
	 NULL, 0},
	{NULL, NULL, NULL, 0, 0, NULL, 0},
};

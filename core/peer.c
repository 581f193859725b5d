/*
 * core/peer.c — the peer transport's life: listen, threads, stop.
 * Incoming streams are in peer_server.c, outgoing in peer_client.c, TLS in
 * peer_tls.c.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/grpc_security.h>

#include "core/core.h"
#include "core/deadline.h"
#include "core/peer_internal.h"

#define DEFAULT_MAX_MSG_BYTES ((size_t)64 << 20)
#define DEFAULT_QUEUE_BYTES ((size_t)16 << 20)
/* Room for gRPC's framing above the largest payload. */
#define RECV_SLACK_BYTES (64 * 1024)

int64_t peer_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int peer_url_addr(const char *url, char *addr, size_t len, bool *tls)
{
	const char *p;
	if (strncmp(url, "http://", 7) == 0) {
		p = url + 7;
		*tls = false;
	} else if (strncmp(url, "https://", 8) == 0) {
		p = url + 8;
		*tls = true;
	} else {
		return -1;
	}
	size_t n = strcspn(p, "/");
	if (n == 0 || n >= len)
		return -1;
	memcpy(addr, p, n);
	addr[n] = 0;
	return 0;
}

bool peer_live_in_add(struct peer_transport *t)
{
	pthread_mutex_lock(&t->mu);
	bool ok = !t->stopping;
	if (ok)
		t->live_in++;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

void peer_live_drop_locked(struct peer_transport *t, long *counter)
{
	if (--*counter == 0 && t->live_in + t->live_out == 0)
		pthread_cond_broadcast(&t->idle);
}

/*
 * Completions of both directions (the incoming streams, so the recv
 * callback runs there, and the outgoing ones) are handled on the process's
 * one polling thread (core/poller.h). Sends still start on the caller's
 * thread (peer_send), so a recv callback never holds one up; the callback
 * only queues the message for the node. This thread only re-dials: it
 * wakes at the next re-dial (schedule_locked signals it) and at least
 * every back-off maximum.
 */
static void *timer_main(void *arg)
{
	pthread_setname_np(pthread_self(), "metad-peer");
	struct peer_transport *t = arg;
	pthread_mutex_lock(&t->mu);
	while (!t->stopping) {
		int64_t now = peer_now_ms();
		int64_t due = peer_client_timers_locked(t, now);
		int64_t wait = PEER_BACKOFF_MAX_MS;
		if (due != 0 && due - now < wait)
			wait = due > now ? due - now : 0;
		struct timespec until = core_deadline_ns(CLOCK_MONOTONIC, wait * 1000000LL);
		pthread_cond_timedwait(&t->timer_cv, &t->mu, &until);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

static int add_ports(struct peer_transport *t, const struct peer_config *cfg, char *err, size_t errlen)
{
	t->ports = calloc(cfg->n_listen_urls ? cfg->n_listen_urls : 1, sizeof(int));
	if (t->ports == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < cfg->n_listen_urls; i++) {
		const char *url = cfg->listen_urls[i];
		char addr[512];
		bool tls;
		if (peer_url_addr(url, addr, sizeof(addr), &tls) != 0) {
			snprintf(err, errlen, "invalid listen peer URL %s", url);
			return -1;
		}
		if (tls && t->cert_pem == NULL) {
			snprintf(err, errlen, "TLS peer URL %s needs --peer-cert-file and --peer-key-file", url);
			return -1;
		}
		grpc_server_credentials *creds = tls ? peer_server_creds(t) : grpc_insecure_server_credentials_create();
		if (creds == NULL) {
			snprintf(err, errlen, "bad peer TLS certificate or key");
			return -1;
		}
		int port = grpc_server_add_http2_port(t->server, addr, creds);
		grpc_server_credentials_release(creds);
		if (port == 0) {
			snprintf(err, errlen, "cannot listen on peer URL %s", url);
			return -1;
		}
		t->ports[t->n_ports++] = port;
	}
	return 0;
}

static grpc_server *make_server(const struct peer_transport *t)
{
	size_t recv_max = t->max_msg_bytes + RECV_SLACK_BYTES;
	grpc_arg args[] = {
		{GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		 {.integer = recv_max > INT_MAX ? INT_MAX : (int)recv_max}},
		{GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = -1}},
		{GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = PEER_KEEPALIVE_MS}},
		{GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = t->keepalive_timeout_ms}},
		{GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, {.integer = 1}},
		/* Senders ping every KEEPALIVE_MS, idle streams included: never
		 * count that as abuse (gRPC's default GOAWAYs after 2 strikes),
		 * and keep pinging on a stream with nothing to send. */
		{GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MAX_PING_STRIKES, {.integer = 0}},
		{GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, {.integer = 0}},
		{GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_CHANNELZ, {.integer = 0}},
		/* A taken port must fail peer_start, not share the port. */
		{GRPC_ARG_INTEGER, GRPC_ARG_ALLOW_REUSEPORT, {.integer = 0}},
	};
	grpc_channel_args cargs = {sizeof(args) / sizeof(args[0]), args};
	return grpc_server_create(&cargs, NULL);
}

/* Tear down what peer_start made, threads not started yet or joined. */
static void destroy(struct peer_transport *t)
{
	if (t->server)
		grpc_server_destroy(t->server);
	if (t->shutdown_cq) {
		/* A pluck queue: its one event, if any, was plucked by peer_stop. */
		grpc_completion_queue_shutdown(t->shutdown_cq);
		grpc_completion_queue_destroy(t->shutdown_cq);
	}
	if (t->snap_cq != NULL) {
		/* Drained already when its thread ran; otherwise (start failed
		 * half-way) the leftover completions are handled here. */
		grpc_completion_queue_shutdown(t->snap_cq);
		core_poller_run(t->snap_cq);
		grpc_completion_queue_destroy(t->snap_cq);
	}
	peer_client_free_all(t);
	free(t->cert_pem);
	free(t->key_pem);
	free(t->ca_pem);
	free(t->ports);
	pthread_cond_destroy(&t->timer_cv);
	pthread_cond_destroy(&t->idle);
	pthread_mutex_destroy(&t->mu);
	free(t);
	grpc_shutdown();
}

/* Join the threads peer_start started (the snapshot queue shuts down). */
static void stop_threads(struct peer_transport *t)
{
	pthread_mutex_lock(&t->mu);
	t->stopping = true;
	pthread_cond_signal(&t->timer_cv);
	pthread_mutex_unlock(&t->mu);
	if (t->started)
		pthread_join(t->thread, NULL);
	t->started = false;
	if (t->snap_cq != NULL)
		grpc_completion_queue_shutdown(t->snap_cq);
	if (t->snap_started)
		pthread_join(t->snap_thread, NULL);
	t->snap_started = false;
}

int peer_start(const struct peer_config *cfg, peer_recv_fn recv, void *arg,
	       struct peer_transport **out, char *err, size_t errlen)
{
	struct peer_transport *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	grpc_init();
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->idle, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->timer_cv, &ca);
	pthread_condattr_destroy(&ca);
	t->recv = recv;
	t->arg = arg;
	t->self_id = cfg->self_id;
	t->cluster_id = cfg->cluster_id;
	t->max_msg_bytes = cfg->max_msg_bytes ? cfg->max_msg_bytes : DEFAULT_MAX_MSG_BYTES;
	t->queue_bytes = cfg->queue_bytes ? cfg->queue_bytes : DEFAULT_QUEUE_BYTES;
	t->keepalive_timeout_ms =
		cfg->keepalive_timeout_ms > 0 ? cfg->keepalive_timeout_ms : PEER_KEEPALIVE_TIMEOUT_MS;
	t->members = cfg->members;
	t->snapshot = cfg->snapshot;
	t->hash = cfg->hash;
	t->snapshot_state = cfg->snapshot_state;
	if (cfg->poller == NULL) {
		snprintf(err, errlen, "no polling thread");
		goto err;
	}
	if (peer_load_tls(t, &cfg->tls, err, errlen) != 0)
		goto err;
	t->server = make_server(t);
	/* Client streaming: no initial payload to read with the call. */
	t->method = grpc_server_register_method(t->server, PEER_METHOD, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
	t->members_method = grpc_server_register_method(t->server, PEER_MEMBERS_METHOD, NULL,
							GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	t->cq = core_poller_cq(cfg->poller);
	t->shutdown_cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_server_register_completion_queue(t->server, t->cq, NULL);
	t->snap_method = grpc_server_register_method(t->server, PEER_SNAPSHOT_METHOD, NULL,
						     GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	t->hash_method = grpc_server_register_method(t->server, PEER_HASH_METHOD, NULL,
						     GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	/* Non-polling (poller.h): snapshot chunks are large, so the wake-up
	 * this costs their completions is nothing. */
	grpc_completion_queue_attributes np = {GRPC_CQ_CURRENT_VERSION, GRPC_CQ_NEXT,
					       GRPC_CQ_NON_POLLING, NULL};
	t->snap_cq = grpc_completion_queue_create(grpc_completion_queue_factory_lookup(&np), &np, NULL);
	grpc_server_register_completion_queue(t->server, t->snap_cq, NULL);
	/* The threads first: once the server starts, calls need them. */
	if (pthread_create(&t->thread, NULL, timer_main, t) != 0) {
		snprintf(err, errlen, "cannot start the peer thread");
		goto err;
	}
	t->started = true;
	if (pthread_create(&t->snap_thread, NULL, peer_snap_main, t) != 0) {
		snprintf(err, errlen, "cannot start the peer snapshot thread");
		goto err;
	}
	t->snap_started = true;
	if (add_ports(t, cfg, err, errlen) != 0)
		goto err;
	grpc_server_start(t->server);
	peer_server_arm(t);
	peer_server_arm(t);
	peer_members_arm(t);
	peer_snap_arm(t);
	peer_hash_arm(t);
	*out = t;
	return 0;

err:
	stop_threads(t);
	destroy(t);
	return -1;
}

int peer_listen_port(const struct peer_transport *t, size_t i)
{
	return i < t->n_ports ? t->ports[i] : 0;
}

void peer_stop(struct peer_transport *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->mu);
	t->stopping = true;
	peer_client_cancel_all_locked(t);
	pthread_mutex_unlock(&t->mu);

	/* Incoming streams never end on their own: cancel them at once (Raft
	 * loses nothing it does not retransmit). Pending request_call tags
	 * then complete with ok == false and are freed on the polling thread. */
	static int shutdown_tag;
	grpc_server_shutdown_and_notify(t->server, t->shutdown_cq, &shutdown_tag);
	grpc_server_cancel_all_calls(t->server);
	grpc_completion_queue_pluck(t->shutdown_cq, &shutdown_tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

	/* Every call's last completion must be handled (on the polling thread
	 * and the snapshot thread) before the snapshot queue shuts down: a
	 * batch started on a shut-down queue is a gRPC assertion. */
	pthread_mutex_lock(&t->mu);
	while (t->live_in + t->live_out > 0)
		pthread_cond_wait(&t->idle, &t->mu);
	pthread_mutex_unlock(&t->mu);
	stop_threads(t);
	destroy(t);
}

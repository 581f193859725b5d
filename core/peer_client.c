/*
 * core/peer_client.c — outgoing peer streams: one per member, fed from a
 * bounded queue, re-dialled with back-off.
 *
 * A member (struct peer_out) owns a channel to one of its URLs and at most
 * one stream (struct peer_conn) at a time. A stream is "connected" once the
 * receiver's initial metadata says it took it; only then are messages sent,
 * one SEND_MESSAGE at a time (gRPC idiom 6), the next started from the
 * previous one's completion or from peer_send when the stream is idle.
 * When the status arrives the stream is over: the member forgets it and
 * re-dials after its back-off. Everything here runs under t->mu.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>

#include "core/peer_internal.h"

/* Nothing logged yet about a member: its first stream is reported. */
#define PEER_NOT_LOGGED ((grpc_status_code)-1)

struct peer_msg {
	struct peer_msg *next;
	grpc_byte_buffer *bb;
	size_t len;
};

struct peer_out {
	struct peer_out *next;
	uint64_t id;
	char **urls;
	size_t n_urls;
	size_t url_i;           /* the URL the channel goes to */
	grpc_channel *channel;  /* NULL until the first dial, or after switching URL */
	struct peer_conn *conn; /* the current stream, or NULL */
	struct peer_msg *head, *tail;
	size_t queued_bytes; /* queued, not in flight */
	int backoff_ms;
	int64_t redial_at; /* 0: no re-dial pending */
	bool connected;
	int64_t connected_ms; /* when the current stream was accepted */
	grpc_status_code last_logged; /* to log a change once, not every retry */
};

struct peer_conn {
	struct peer_transport *t;
	struct peer_out *p; /* non-NULL iff p->conn == this */
	char *url;          /* dialled (the member's URLs may change meanwhile) */
	grpc_call *call;
	struct core_tag ready_tag;  /* SEND_INITIAL_METADATA + RECV_INITIAL_METADATA */
	struct core_tag send_tag;   /* SEND_MESSAGE */
	struct core_tag status_tag; /* RECV_STATUS_ON_CLIENT */
	int pending;
	bool accepted;
	bool finished;
	struct peer_msg *inflight;
	grpc_metadata out_md[2];
	char cluster_hex[17], from_hex[17];
	grpc_metadata_array in_md, trailing_md;
	grpc_status_code status;
	grpc_slice details;
};

static void on_ready(struct core_tag *tag, bool ok);
static void on_send(struct core_tag *tag, bool ok);
static void on_status(struct core_tag *tag, bool ok);

static void msg_free(struct peer_msg *m)
{
	grpc_byte_buffer_destroy(m->bb);
	free(m);
}

static struct peer_out *find_locked(struct peer_transport *t, uint64_t id)
{
	for (struct peer_out *p = t->peers; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

static void conn_maybe_free_locked(struct peer_conn *c)
{
	if (c->pending > 0)
		return;
	struct peer_transport *t = c->t;
	if (c->inflight)
		msg_free(c->inflight);
	grpc_metadata_array_destroy(&c->in_md);
	grpc_metadata_array_destroy(&c->trailing_md);
	grpc_slice_unref(c->details);
	grpc_call_unref(c->call);
	free(c->url);
	free(c);
	peer_live_drop_locked(t, &t->live_out);
}

static bool start_locked(struct peer_conn *c, const grpc_op *ops, size_t n, struct core_tag *tag)
{
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
	if (e != GRPC_CALL_OK) {
		/* No completion will come (grpc.h): a bug, reported and survived. */
		core_log("error", "peer stream: start_batch failed: %d", (int)e);
		return false;
	}
	c->pending++;
	return true;
}

/* Send the next queued message if the stream is up and idle. */
static void pump_locked(struct peer_out *p)
{
	struct peer_conn *c = p->conn;
	if (c == NULL || !c->accepted || c->finished || c->inflight || p->head == NULL || c->t->stopping)
		return;
	struct peer_msg *m = p->head;
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = m->bb;
	/* More is queued behind this one: let gRPC hold it for the same write
	 * (the completion does not wait for the flush; the next send, without
	 * the hint once the queue is drained, flushes). 100-byte messages:
	 * ~80,000/s without the hint, ~400,000/s with it, on loopback. */
	if (m->next != NULL)
		op.flags = GRPC_WRITE_BUFFER_HINT;
	if (!start_locked(c, &op, 1, &c->send_tag)) {
		grpc_call_cancel(c->call, NULL); /* the status re-dials */
		return;
	}
	p->head = m->next;
	if (p->head == NULL)
		p->tail = NULL;
	p->queued_bytes -= m->len;
	c->inflight = m;
}

static void schedule_locked(struct peer_transport *t, struct peer_out *p, int64_t at)
{
	p->redial_at = at;
	if (t->next_due_ms == 0 || at < t->next_due_ms) {
		t->next_due_ms = at;
		pthread_cond_signal(&t->timer_cv); /* the re-dial thread may sleep longer */
	}
}

static grpc_channel *make_channel(struct peer_transport *t, const char *url)
{
	char addr[512];
	bool tls;
	if (peer_url_addr(url, addr, sizeof(addr), &tls) != 0)
		return NULL;
	grpc_arg args[] = {
		{GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = -1}},
		{GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = PEER_KEEPALIVE_MS}},
		{GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = t->keepalive_timeout_ms}},
		{GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, {.integer = 1}},
		{GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, {.integer = 0}},
		/* The channel's own reconnect back-off (default 1 s growing to
		 * 120 s) must not outlast ours: a restarted peer is reached
		 * within PEER_BACKOFF_MAX_MS. The connect deadline bounds a
		 * handshake with a peer that accepts but never answers. */
		{GRPC_ARG_INTEGER, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, {.integer = PEER_BACKOFF_MIN_MS}},
		{GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, {.integer = PEER_BACKOFF_MAX_MS}},
		{GRPC_ARG_INTEGER, GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, {.integer = 2000}},
		/* Retries would buffer a long-lived stream's messages for replay. */
		{GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_RETRIES, {.integer = 0}},
		/* Each member's channel keeps its own connection, even to an
		 * address another transport in this process also dials. */
		{GRPC_ARG_INTEGER, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, {.integer = 1}},
		{GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_CHANNELZ, {.integer = 0}},
	};
	grpc_channel_args cargs = {sizeof(args) / sizeof(args[0]), args};
	grpc_channel_credentials *creds = peer_channel_creds(t, tls);
	if (creds == NULL)
		return NULL;
	grpc_channel *ch = grpc_channel_create(addr, creds, &cargs);
	grpc_channel_credentials_release(creds);
	return ch;
}

/* Open a stream to p. On failure, schedule the next try. */
static void dial_locked(struct peer_transport *t, struct peer_out *p)
{
	if (t->stopping || p->conn != NULL || p->n_urls == 0)
		return;
	if (p->channel == NULL)
		p->channel = make_channel(t, p->urls[p->url_i]);
	struct peer_conn *c = p->channel ? calloc(1, sizeof(*c)) : NULL;
	if (c == NULL) {
		if (p->last_logged != GRPC_STATUS_INVALID_ARGUMENT)
			core_log("warn", "peer %" PRIx64 ": cannot dial %s", p->id, p->urls[p->url_i]);
		p->last_logged = GRPC_STATUS_INVALID_ARGUMENT;
		p->url_i = (p->url_i + 1) % p->n_urls;
		schedule_locked(t, p, peer_now_ms() + PEER_BACKOFF_MAX_MS);
		return;
	}
	c->t = t;
	c->url = strdup(p->urls[p->url_i]);
	c->ready_tag.fn = on_ready;
	c->send_tag.fn = on_send;
	c->status_tag.fn = on_status;
	c->details = grpc_empty_slice();
	grpc_metadata_array_init(&c->in_md);
	grpc_metadata_array_init(&c->trailing_md);
	c->call = grpc_channel_create_call(p->channel, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq,
					   grpc_slice_from_static_string(PEER_METHOD), NULL,
					   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	t->live_out++;
	p->conn = c;
	c->p = p;

	snprintf(c->cluster_hex, sizeof(c->cluster_hex), "%" PRIx64, t->cluster_id);
	snprintf(c->from_hex, sizeof(c->from_hex), "%" PRIx64, t->self_id);
	c->out_md[0].key = grpc_slice_from_static_string(PEER_MD_CLUSTER);
	c->out_md[0].value = grpc_slice_from_static_string(c->cluster_hex);
	c->out_md[1].key = grpc_slice_from_static_string(PEER_MD_FROM);
	c->out_md[1].value = grpc_slice_from_static_string(c->from_hex);
	grpc_op ops[2];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = 2;
	ops[0].data.send_initial_metadata.metadata = c->out_md;
	ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[1].data.recv_initial_metadata.recv_initial_metadata = &c->in_md;
	bool ok = start_locked(c, ops, 2, &c->ready_tag);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &c->trailing_md;
	ops[0].data.recv_status_on_client.status = &c->status;
	ops[0].data.recv_status_on_client.status_details = &c->details;
	if (start_locked(c, ops, 1, &c->status_tag)) {
		if (!ok)
			grpc_call_cancel(c->call, NULL);
		return;
	}
	/* No status will come: undo by hand and try again later. */
	grpc_call_cancel(c->call, NULL);
	p->conn = NULL;
	c->p = NULL;
	c->finished = true;
	schedule_locked(t, p, peer_now_ms() + PEER_BACKOFF_MAX_MS);
	conn_maybe_free_locked(c);
}

static bool md_has(const grpc_metadata_array *md, const char *key)
{
	for (size_t i = 0; i < md->count; i++)
		if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0)
			return true;
	return false;
}

static void on_ready(struct core_tag *tag, bool ok)
{
	struct peer_conn *c = PEER_CONTAINER(tag, struct peer_conn, ready_tag);
	struct peer_transport *t = c->t; /* c may be freed before the unlock */
	pthread_mutex_lock(&t->mu);
	c->pending--;
	struct peer_out *p = c->p;
	/* Without the marker the receiver is about to refuse: the status says why. */
	if (ok && p != NULL && !c->finished && md_has(&c->in_md, PEER_MD_ACCEPTED)) {
		c->accepted = true;
		p->connected = true;
		p->connected_ms = peer_now_ms();
		p->backoff_ms = PEER_BACKOFF_MIN_MS;
		if (p->last_logged != GRPC_STATUS_OK)
			core_log("info", "peer %" PRIx64 ": stream to %s established", p->id,
				c->url ? c->url : "?");
		p->last_logged = GRPC_STATUS_OK;
		pump_locked(p);
	}
	conn_maybe_free_locked(c);
	pthread_mutex_unlock(&t->mu);
}

static void on_send(struct core_tag *tag, bool ok)
{
	struct peer_conn *c = PEER_CONTAINER(tag, struct peer_conn, send_tag);
	struct peer_transport *t = c->t; /* c may be freed before the unlock */
	pthread_mutex_lock(&t->mu);
	c->pending--;
	msg_free(c->inflight);
	c->inflight = NULL;
	/* !ok: the stream broke; the status follows and re-dials. */
	if (ok && c->p != NULL)
		pump_locked(c->p);
	conn_maybe_free_locked(c);
	pthread_mutex_unlock(&t->mu);
}

static void on_status(struct core_tag *tag, bool ok)
{
	(void)ok; /* RECV_STATUS_ON_CLIENT always succeeds */
	struct peer_conn *c = PEER_CONTAINER(tag, struct peer_conn, status_tag);
	struct peer_transport *t = c->t;
	pthread_mutex_lock(&t->mu);
	c->pending--;
	c->finished = true;
	struct peer_out *p = c->p;
	if (p != NULL && !t->stopping) {
		p->conn = NULL;
		c->p = NULL;
		p->connected = false;
		if (c->status != p->last_logged) {
			char *details = grpc_slice_to_c_string(c->details);
			core_log("warn", "peer %" PRIx64 ": stream to %s %s: %s (status %d)", p->id,
				c->url ? c->url : "?", c->accepted ? "lost" : "refused or unreachable", details,
				(int)c->status);
			gpr_free(details);
			p->last_logged = c->status;
		}
		/* A stream that never got going counts against this URL: try the
		 * member's next one (a new channel) on the next dial. */
		if (!c->accepted && p->n_urls > 1 && p->channel != NULL) {
			grpc_channel_destroy(p->channel);
			p->channel = NULL;
			p->url_i = (p->url_i + 1) % p->n_urls;
		}
		schedule_locked(t, p, peer_now_ms() + p->backoff_ms);
		p->backoff_ms = p->backoff_ms * 2 > PEER_BACKOFF_MAX_MS ? PEER_BACKOFF_MAX_MS : p->backoff_ms * 2;
	} else if (p != NULL) {
		p->conn = NULL;
		c->p = NULL;
		p->connected = false;
	}
	conn_maybe_free_locked(c);
	pthread_mutex_unlock(&t->mu);
}

int64_t peer_client_timers_locked(struct peer_transport *t, int64_t now)
{
	if (t->stopping || t->next_due_ms == 0 || now < t->next_due_ms)
		return t->stopping ? 0 : t->next_due_ms;
	t->next_due_ms = 0;
	for (struct peer_out *p = t->peers; p; p = p->next) {
		if (p->redial_at == 0)
			continue;
		if (p->redial_at <= now) {
			p->redial_at = 0;
			dial_locked(t, p); /* may schedule again */
		} else if (t->next_due_ms == 0 || p->redial_at < t->next_due_ms) {
			t->next_due_ms = p->redial_at;
		}
	}
	return t->next_due_ms;
}

void peer_client_cancel_all_locked(struct peer_transport *t)
{
	for (struct peer_out *p = t->peers; p; p = p->next) {
		p->redial_at = 0;
		if (p->conn)
			grpc_call_cancel(p->conn->call, NULL);
	}
	t->next_due_ms = 0;
}

static void free_urls(char **urls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
}

/* Free a member with no stream (or whose stream is detached). */
static void out_free(struct peer_out *p)
{
	while (p->head) {
		struct peer_msg *m = p->head;
		p->head = m->next;
		msg_free(m);
	}
	if (p->channel)
		grpc_channel_destroy(p->channel);
	free_urls(p->urls, p->n_urls);
	free(p);
}

void peer_client_free_all(struct peer_transport *t)
{
	while (t->peers) {
		struct peer_out *p = t->peers;
		t->peers = p->next;
		out_free(p);
	}
}

static bool same_urls(const struct peer_out *p, const char *const *urls, size_t n)
{
	if (p->n_urls != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(p->urls[i], urls[i]) != 0)
			return false;
	return true;
}

int peer_set(struct peer_transport *t, uint64_t id, const char *const *urls, size_t n)
{
	char **copy = calloc(n ? n : 1, sizeof(char *));
	if (copy == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char addr[512];
		bool tls;
		copy[i] = strdup(urls[i]);
		if (copy[i] == NULL || peer_url_addr(urls[i], addr, sizeof(addr), &tls) != 0) {
			free_urls(copy, i + 1);
			return -1;
		}
	}
	pthread_mutex_lock(&t->mu);
	if (t->stopping) {
		pthread_mutex_unlock(&t->mu);
		free_urls(copy, n);
		return -1;
	}
	struct peer_out *p = find_locked(t, id);
	if (p != NULL && same_urls(p, urls, n)) {
		/* Membership is re-applied often: leave a working stream be. */
		pthread_mutex_unlock(&t->mu);
		free_urls(copy, n);
		return 0;
	}
	grpc_channel *old_channel = NULL;
	char **old_urls = NULL;
	size_t old_n = 0;
	if (p == NULL) {
		p = calloc(1, sizeof(*p));
		if (p == NULL) {
			pthread_mutex_unlock(&t->mu);
			free_urls(copy, n);
			return -1;
		}
		p->id = id;
		p->last_logged = PEER_NOT_LOGGED;
		p->next = t->peers;
		t->peers = p;
	} else {
		/* New URLs: a new channel, and the current stream (to an old URL)
		 * ends; its status re-dials at once. */
		old_urls = p->urls;
		old_n = p->n_urls;
		old_channel = p->channel;
		p->channel = NULL;
		if (p->conn)
			grpc_call_cancel(p->conn->call, NULL);
	}
	p->urls = copy;
	p->n_urls = n;
	p->url_i = 0;
	p->backoff_ms = PEER_BACKOFF_MIN_MS;
	if (p->conn == NULL)
		dial_locked(t, p);
	pthread_mutex_unlock(&t->mu);
	/* A live call keeps what it needs of its channel. */
	if (old_channel)
		grpc_channel_destroy(old_channel);
	free_urls(old_urls, old_n);
	return 0;
}

void peer_client_heard(struct peer_transport *t, uint64_t id)
{
	pthread_mutex_lock(&t->mu);
	struct peer_out *p = find_locked(t, id);
	/* Waiting out a back-off to a member that has just dialled us: it is
	 * up (a member just started, or a link back), so dial now, on a new
	 * channel, as the old one waits out gRPC's own reconnect back-off. */
	if (p != NULL && !t->stopping && p->conn == NULL && p->redial_at != 0) {
		if (p->channel != NULL)
			grpc_channel_destroy(p->channel);
		p->channel = NULL;
		p->redial_at = 0;
		p->backoff_ms = PEER_BACKOFF_MIN_MS;
		dial_locked(t, p);
	}
	pthread_mutex_unlock(&t->mu);
}

void peer_remove(struct peer_transport *t, uint64_t id)
{
	pthread_mutex_lock(&t->mu);
	struct peer_out **pp = &t->peers;
	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	struct peer_out *p = *pp;
	if (p == NULL) {
		pthread_mutex_unlock(&t->mu);
		return;
	}
	*pp = p->next;
	if (p->conn) {
		/* The stream lives on until its completions drain, detached. */
		p->conn->p = NULL;
		grpc_call_cancel(p->conn->call, NULL);
		p->conn = NULL;
	}
	pthread_mutex_unlock(&t->mu);
	out_free(p);
}

bool peer_send(struct peer_transport *t, uint64_t id, const uint8_t *data, size_t len)
{
	if (len > t->max_msg_bytes)
		return false; /* the receiver would refuse it and break the stream */
	struct peer_msg *m = malloc(sizeof(*m));
	if (m == NULL)
		return false;
	/* Copy outside the lock. */
	grpc_slice s = grpc_slice_malloc(len);
	memcpy(GRPC_SLICE_START_PTR(s), data, len);
	m->bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	m->len = len;
	m->next = NULL;
	pthread_mutex_lock(&t->mu);
	struct peer_out *p = t->stopping ? NULL : find_locked(t, id);
	if (p == NULL || p->queued_bytes + len > t->queue_bytes) {
		pthread_mutex_unlock(&t->mu);
		msg_free(m);
		return false;
	}
	if (p->tail)
		p->tail->next = m;
	else
		p->head = m;
	p->tail = m;
	p->queued_bytes += len;
	pump_locked(p);
	pthread_mutex_unlock(&t->mu);
	return true;
}

bool peer_connected(struct peer_transport *t, uint64_t id)
{
	pthread_mutex_lock(&t->mu);
	struct peer_out *p = find_locked(t, id);
	bool up = p != NULL && p->connected;
	pthread_mutex_unlock(&t->mu);
	return up;
}

int64_t peer_connected_for_ms(struct peer_transport *t, uint64_t id)
{
	pthread_mutex_lock(&t->mu);
	struct peer_out *p = find_locked(t, id);
	int64_t up = p != NULL && p->connected ? peer_now_ms() - p->connected_ms : -1;
	pthread_mutex_unlock(&t->mu);
	return up;
}

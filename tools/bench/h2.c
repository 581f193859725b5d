/*
 * tools/bench/h2.c — the nghttp2 unary engine (see h2.h).
 *
 * Threads own connections (connection j on thread j % threads) and clients
 * own a connection (client i on connection i % conns), so nothing is shared
 * but the ticket counter and the first error. A thread's round: start the
 * clients whose answers arrived, write every connection that has frames
 * queued, wait in epoll, read.
 */
#include "h2.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/slice.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "run.h"

#define READ_BYTES (64 * 1024)
#define CONNECT_TIMEOUT_MS 10000
/* Answers are read as they come and never held: windows only need to be
 * larger than any one answer burst. */
#define STREAM_WINDOW (1 << 24)
#define CONN_WINDOW (1 << 30)

struct h2_thread;

struct h2_client {
	struct h2_conn *conn;
	struct h2_client *next;  /* on its thread's list of clients to start */
	const struct bench_workload *w;
	uint64_t rng, ticket, t0;
	int kind;
	int32_t stream;          /* in flight on this stream; 0: none */
	int expired;             /* cancelled at its deadline, already counted */
	uint8_t *body;           /* the request: 5-byte gRPC prefix + message */
	size_t body_len, body_off, body_cap;
	int grpc_status;         /* -1 until the server says */
	int http_status;
	char msg[256];
	size_t msglen;
};

struct h2_conn {
	struct h2_thread *t;
	int fd;
	nghttp2_session *s;
	char authority[160];
	uint8_t *out;            /* frames not written yet */
	size_t out_len, out_off, out_cap;
	int polling_out;         /* EPOLLOUT armed: the socket was full */
	int dirty;               /* frames may be queued in the session */
	int dead;
	struct h2_client **clients;
	int nclients;
};

struct h2_thread {
	struct bench_thread *bt;
	int epfd;
	struct h2_conn **conns;
	int nconns;
	struct h2_client *ready;
	const struct bench_opts *o;
	const char *timeout_hdr; /* grpc-timeout value, "" for none */
	uint8_t rbuf[READ_BYTES];
};

int bench_h2_eligible(const struct bench_opts *o)
{
	if (o->engine_grpc || o->rate > 0 || o->user != NULL || o->token != NULL ||
	    o->cacert != NULL)
		return 0;
	for (int i = 0; i < o->n_endpoints; i++)
		if (o->tls[i])
			return 0;
	return 1;
}

/* ---- one request ---- */

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	(void)s;
	(void)id;
	(void)ud;
	struct h2_client *c = src->ptr;
	size_t n = c->body_len - c->body_off;
	if (n > length)
		n = length;
	memcpy(buf, c->body + c->body_off, n);
	c->body_off += n;
	if (c->body_off == c->body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

#define NV(n, v, vlen) \
	{(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), \
	 NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}

static void client_failed(struct h2_thread *t, grpc_status_code code, const char *msg)
{
	bench_thread_error(t->bt, code, msg, strlen(msg));
	atomic_fetch_add_explicit(&t->bt->done, 1, memory_order_relaxed);
}

static void client_issue(struct h2_thread *t, struct h2_client *c)
{
	struct h2_conn *k = c->conn;
	struct bench_req req = {.kind = BENCH_KIND_ALL};
	c->w->next(c->w->ctx, c->ticket, &c->rng, &req);
	size_t len = GRPC_SLICE_LENGTH(req.msg);
	if (len + 5 > c->body_cap) {
		uint8_t *b = realloc(c->body, len + 5);
		if (b == NULL) {
			grpc_slice_unref(req.msg);
			client_failed(t, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			t->bt->live--;
			return;
		}
		c->body = b;
		c->body_cap = len + 5;
	}
	c->body[0] = 0; /* not compressed */
	c->body[1] = (uint8_t)(len >> 24);
	c->body[2] = (uint8_t)(len >> 16);
	c->body[3] = (uint8_t)(len >> 8);
	c->body[4] = (uint8_t)len;
	memcpy(c->body + 5, GRPC_SLICE_START_PTR(req.msg), len);
	grpc_slice_unref(req.msg);
	c->body_len = len + 5;
	c->body_off = 0;
	c->kind = req.kind;
	c->grpc_status = -1;
	c->http_status = 0;
	c->msglen = 0;
	c->expired = 0;
	const char *path = bench_method_path(req.method);
	nghttp2_nv nva[] = {
		NV(":method", "POST", 4),
		NV(":scheme", "http", 4),
		NV(":path", path, strlen(path)),
		NV(":authority", k->authority, strlen(k->authority)),
		NV("content-type", "application/grpc", 16),
		NV("te", "trailers", 8),
		NV("grpc-timeout", t->timeout_hdr, strlen(t->timeout_hdr)),
	};
	size_t nnv = sizeof(nva) / sizeof(nva[0]) - (t->timeout_hdr[0] == 0);
	nghttp2_data_provider dp = {.source.ptr = c, .read_callback = body_read};
	c->t0 = bench_now_ns();
	int32_t id = nghttp2_submit_request(k->s, NULL, nva, nnv, &dp, c);
	if (id < 0) {
		client_failed(t, GRPC_STATUS_INTERNAL, nghttp2_strerror(id));
		t->bt->live--;
		return;
	}
	c->stream = id;
	k->dirty = 1;
}

static void client_next(struct h2_thread *t, struct h2_client *c)
{
	uint64_t due;
	if (c->conn->dead || bench_run_ticket(t->bt->run, &c->ticket, &due) != 0) {
		t->bt->live--;
		return;
	}
	client_issue(t, c);
}

/* ---- nghttp2 callbacks (user data: the connection) ---- */

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *ud)
{
	(void)flags;
	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct h2_client *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (c == NULL)
		return 0;
	char num[16];
	size_t n = valuelen < sizeof(num) - 1 ? valuelen : sizeof(num) - 1;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		memcpy(num, value, n);
		num[n] = 0;
		c->http_status = atoi(num);
	} else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
		memcpy(num, value, n);
		num[n] = 0;
		c->grpc_status = atoi(num);
		if (c->grpc_status < 0 || c->grpc_status >= BENCH_STATUS_CODES)
			c->grpc_status = GRPC_STATUS_UNKNOWN;
	} else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
		/* Kept percent-encoded, as it came: only the first error is shown. */
		c->msglen = valuelen < sizeof(c->msg) ? valuelen : sizeof(c->msg);
		memcpy(c->msg, value, c->msglen);
	}
	return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
	struct h2_conn *k = ud;
	struct h2_thread *t = k->t;
	struct h2_client *c = nghttp2_session_get_stream_user_data(s, id);
	if (c == NULL || c->stream != id)
		return 0;
	c->stream = 0;
	if (c->expired) {
		/* Counted when it was cancelled. */
	} else if (err != NGHTTP2_NO_ERROR) {
		char m[96];
		snprintf(m, sizeof(m), "stream reset: %s", nghttp2_http2_strerror(err));
		client_failed(t, err == NGHTTP2_REFUSED_STREAM ? GRPC_STATUS_UNAVAILABLE
							       : GRPC_STATUS_INTERNAL, m);
	} else if (c->grpc_status < 0) {
		char m[64];
		snprintf(m, sizeof(m), "no grpc-status (HTTP status %d)", c->http_status);
		client_failed(t, GRPC_STATUS_UNKNOWN, m);
	} else if (c->grpc_status == GRPC_STATUS_OK) {
		bench_stats_ok(&t->bt->stats, c->kind, bench_now_ns() - c->t0);
		atomic_fetch_add_explicit(&t->bt->done, 1, memory_order_relaxed);
	} else {
		bench_thread_error(t->bt, (grpc_status_code)c->grpc_status, c->msg, c->msglen);
		atomic_fetch_add_explicit(&t->bt->done, 1, memory_order_relaxed);
	}
	/* Started after the read: a callback must not submit into the session
	 * that is parsing. */
	c->next = t->ready;
	t->ready = c;
	return 0;
}

/* ---- connections ---- */

static void conn_out_mode(struct h2_conn *k, int want)
{
	if (k->polling_out == want)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = k};
	if (epoll_ctl(k->t->epfd, EPOLL_CTL_MOD, k->fd, &ev) == 0)
		k->polling_out = want;
}

/* Every frame the session has queued, in one send when the socket takes it.
 * Returns -1 when the connection is broken. */
static int conn_flush(struct h2_conn *k)
{
	k->dirty = 0;
	for (;;) {
		while (k->out_off < k->out_len) {
			ssize_t w = send(k->fd, k->out + k->out_off, k->out_len - k->out_off,
					 MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				conn_out_mode(k, 1);
				return 0;
			}
			if (w < 0)
				return -1;
			k->out_off += (size_t)w;
		}
		k->out_off = k->out_len = 0;
		for (;;) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(k->s, &data);
			if (n < 0)
				return -1;
			if (n == 0)
				break;
			if (k->out_len + (size_t)n > k->out_cap) {
				size_t cap = (k->out_len + (size_t)n) * 2;
				uint8_t *b = realloc(k->out, cap);
				if (b == NULL)
					return -1;
				k->out = b;
				k->out_cap = cap;
			}
			memcpy(k->out + k->out_len, data, (size_t)n);
			k->out_len += (size_t)n;
		}
		if (k->out_len == 0) {
			conn_out_mode(k, 0);
			if (!nghttp2_session_want_read(k->s) && !nghttp2_session_want_write(k->s))
				return -1; /* GOAWAY handled both ways */
			return 0;
		}
	}
}

/* Reads until the socket is drained (a short read says so). */
static int conn_read(struct h2_thread *t, struct h2_conn *k)
{
	for (;;) {
		ssize_t n = recv(k->fd, t->rbuf, sizeof(t->rbuf), 0);
		if (n > 0) {
			k->dirty = 1;
			if (nghttp2_session_mem_recv(k->s, t->rbuf, (size_t)n) < 0)
				return -1;
			if ((size_t)n < sizeof(t->rbuf))
				return 0;
			continue;
		}
		if (n == 0)
			return -1;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	}
}

/* The connection is gone: its requests in flight fail, its clients stop. */
static void conn_fail(struct h2_thread *t, struct h2_conn *k, const char *why)
{
	if (k->dead)
		return;
	k->dead = 1;
	for (int i = 0; i < k->nclients; i++) {
		struct h2_client *c = k->clients[i];
		if (c->stream != 0) {
			c->stream = 0;
			if (!c->expired)
				client_failed(t, GRPC_STATUS_UNAVAILABLE, why);
			t->bt->live--;
		}
	}
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, k->fd, NULL);
}

/* Deadlines: a request older than --timeout is cancelled and counted as
 * DEADLINE_EXCEEDED (the server got grpc-timeout as well). */
static void expire(struct h2_thread *t, uint64_t now)
{
	if (t->o->timeout <= 0)
		return;
	uint64_t limit = (uint64_t)(t->o->timeout * 1e9);
	for (int j = 0; j < t->nconns; j++) {
		struct h2_conn *k = t->conns[j];
		for (int i = 0; !k->dead && i < k->nclients; i++) {
			struct h2_client *c = k->clients[i];
			if (c->stream != 0 && !c->expired && now - c->t0 > limit) {
				c->expired = 1;
				client_failed(t, GRPC_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded");
				nghttp2_submit_rst_stream(k->s, NGHTTP2_FLAG_NONE, c->stream,
							  NGHTTP2_CANCEL);
				k->dirty = 1;
			}
		}
	}
}

static void *thread_main(void *arg)
{
	struct h2_thread *t = arg;
	struct bench_thread *bt = t->bt;
	for (int j = 0; j < t->nconns; j++)
		for (int i = 0; i < t->conns[j]->nclients; i++)
			bt->live++;
	for (int j = 0; j < t->nconns; j++)
		for (int i = 0; i < t->conns[j]->nclients; i++)
			client_next(t, t->conns[j]->clients[i]);
	uint64_t next_tick = bench_now_ns() + 100000000ull;
	while (bt->live > 0) {
		while (t->ready != NULL) {
			struct h2_client *c = t->ready;
			t->ready = c->next;
			client_next(t, c);
		}
		for (int j = 0; j < t->nconns; j++) {
			struct h2_conn *k = t->conns[j];
			if (!k->dead && k->dirty && !k->polling_out && conn_flush(k) != 0)
				conn_fail(t, k, "connection lost while writing");
		}
		if (bt->live == 0)
			break;
		struct epoll_event evs[64];
		int n = epoll_wait(t->epfd, evs, 64, 100);
		for (int e = 0; e < n; e++) {
			struct h2_conn *k = evs[e].data.ptr;
			if (k->dead)
				continue;
			if ((evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_read(t, k) != 0) {
				conn_fail(t, k, "connection closed by the server");
				continue;
			}
			if ((evs[e].events & EPOLLOUT) && (conn_out_mode(k, 0), conn_flush(k) != 0))
				conn_fail(t, k, "connection lost while writing");
		}
		uint64_t now = bench_now_ns();
		if (now >= next_tick) {
			next_tick = now + 100000000ull;
			expire(t, now);
		}
	}
	bt->t_end = bench_now_ns();
	atomic_fetch_sub(&bt->run->running, 1);
	return NULL;
}

/* A blocking connect with a deadline, then a non-blocking socket. */
static int dial(const char *endpoint, char *authority, size_t authlen, char *err, size_t errlen)
{
	char host[128], port[16];
	const char *colon = strrchr(endpoint, ':');
	if (colon == NULL || (size_t)(colon - endpoint) >= sizeof(host) || strlen(colon + 1) >= sizeof(port)) {
		snprintf(err, errlen, "bad endpoint %s", endpoint);
		return -1;
	}
	const char *h = endpoint;
	size_t hl = (size_t)(colon - endpoint);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	snprintf(port, sizeof(port), "%s", colon + 1);
	snprintf(authority, authlen, "%s", endpoint);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	int g = getaddrinfo(host, port, &hints, &ai);
	if (g != 0) {
		snprintf(err, errlen, "%s: %s", endpoint, gai_strerror(g));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int rc = connect(fd, a->ai_addr, a->ai_addrlen);
		if (rc != 0 && errno == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			rc = poll(&p, 1, CONNECT_TIMEOUT_MS) == 1 &&
					     getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
					     soerr == 0
				     ? 0
				     : -1;
			if (soerr != 0)
				errno = soerr;
		}
		if (rc != 0) {
			snprintf(err, errlen, "cannot connect to %s: %s", endpoint, strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd >= 0) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}

static nghttp2_session_callbacks *callbacks(void)
{
	nghttp2_session_callbacks *cb;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		return NULL;
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	return cb;
}

static int conn_open(struct h2_conn *k, const char *endpoint, nghttp2_session_callbacks *cb,
		     char *err, size_t errlen)
{
	k->fd = dial(endpoint, k->authority, sizeof(k->authority), err, errlen);
	if (k->fd < 0)
		return -1;
	if (nghttp2_session_client_new(&k->s, cb, k) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
	};
	if (nghttp2_submit_settings(k->s, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
	    nghttp2_session_set_local_window_size(k->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0) {
		snprintf(err, errlen, "cannot set up HTTP/2 with %s", endpoint);
		return -1;
	}
	k->dirty = 1;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = k};
	if (epoll_ctl(k->t->epfd, EPOLL_CTL_ADD, k->fd, &ev) != 0) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int bench_h2_run(const struct bench_opts *o, const struct bench_workload *w, const char *label,
		 int show_progress, struct bench_result *res)
{
	int nconns = o->conns < o->clients ? o->conns : o->clients;
	if (nconns < 1)
		nconns = 1;
	int nthreads = bench_default_threads(o);
	if (nthreads > nconns)
		nthreads = nconns;
	struct h2_client *clients = calloc((size_t)o->clients, sizeof(*clients));
	struct h2_conn *conns = calloc((size_t)nconns, sizeof(*conns));
	struct h2_client **by_conn = calloc((size_t)o->clients, sizeof(*by_conn));
	struct h2_thread *threads = calloc((size_t)nthreads, sizeof(*threads));
	struct h2_conn **conn_list = calloc((size_t)nconns, sizeof(*conn_list));
	nghttp2_session_callbacks *cb = callbacks();
	struct bench_run r;
	int rv = bench_run_init(&r, o, NULL, nthreads, 1);
	if (clients == NULL || conns == NULL || by_conn == NULL || threads == NULL ||
	    conn_list == NULL || cb == NULL)
		rv = 1;
	char timeout_hdr[16] = "";
	if (o->timeout > 0) {
		double ms = o->timeout * 1000;
		snprintf(timeout_hdr, sizeof(timeout_hdr), "%lldm",
			 (long long)(ms > 99999999 ? 99999999 : ms < 1 ? 1 : ms));
	}
	for (int j = 0; conns != NULL && j < nconns; j++)
		conns[j].fd = -1;
	for (int ti = 0; threads != NULL && ti < nthreads; ti++)
		threads[ti].epfd = -1;
	/* Lay out: connection j's clients are i = j, j + nconns, ... */
	int pos = 0;
	for (int j = 0; rv == 0 && j < nconns; j++) {
		conns[j].clients = by_conn + pos;
		for (int i = j; i < o->clients; i += nconns) {
			struct h2_client *c = &clients[i];
			c->conn = &conns[j];
			c->w = w;
			c->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
			conns[j].clients[conns[j].nclients++] = c;
			pos++;
		}
	}
	for (int ti = 0; rv == 0 && ti < nthreads; ti++) {
		struct h2_thread *t = &threads[ti];
		t->bt = &r.threads[ti];
		t->o = o;
		t->timeout_hdr = timeout_hdr;
		t->conns = conn_list + ti * (nconns / nthreads) + (ti < nconns % nthreads ? ti : nconns % nthreads);
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (t->epfd < 0)
			rv = 1;
		for (int j = ti; j < nconns; j += nthreads)
			t->conns[t->nconns++] = &conns[j];
	}
	char err[256] = "";
	for (int j = 0; rv == 0 && j < nconns; j++) {
		conns[j].t = &threads[j % nthreads];
		if (conn_open(&conns[j], o->endpoints[j % o->n_endpoints], cb, err, sizeof(err)) != 0) {
			fprintf(stderr, "metad-bench: %s\n", err);
			rv = 1;
		}
	}
	if (rv == 0) {
		r.label = label;
		r.show_progress = show_progress;
		rv = bench_run_spawn(&r, thread_main, threads, sizeof(*threads));
	}
	if (rv == 0) {
		bench_run_wait(&r, o->duration);
		bench_run_result(&r, res);
	}
	for (int j = 0; conns != NULL && j < nconns; j++) {
		if (conns[j].s != NULL)
			nghttp2_session_del(conns[j].s);
		if (conns[j].fd >= 0)
			close(conns[j].fd);
		free(conns[j].out);
	}
	for (int ti = 0; threads != NULL && ti < nthreads; ti++)
		if (threads[ti].epfd >= 0)
			close(threads[ti].epfd);
	for (int i = 0; clients != NULL && i < o->clients; i++)
		free(clients[i].body);
	if (cb != NULL)
		nghttp2_session_callbacks_del(cb);
	bench_run_close(&r);
	free(clients);
	free(conns);
	free(by_conn);
	free(threads);
	free(conn_list);
	return rv;
}

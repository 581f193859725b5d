/*
 * tests/core/test_peer.c — the peer transport over loopback, in one process:
 * thousands of payloads (1 B to 1 MiB) between three members in every
 * direction, intact and in order; a stopped and restarted member is reached
 * again, and so is one whose first URL is dead; a peer that goes silent is
 * noticed by keepalive; another cluster and another CA are refused; a taken
 * port fails.
 * Also prints the rate of 100-byte messages between two members.
 *
 * Every wait polls a condition against a deadline; nothing relies on a sleep
 * being long enough.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/peer.h"
#include "tests/core/poller_once.h"
#include "tests/expect.h"

#define MAX_ID 16
#define MIB (1u << 20)
#define DEADLINE_MS 60000 /* generous: sanitizers and a shared 2-core machine */

/* What one member received from one sender. */
struct link {
	uint64_t next; /* the seq expected next */
	uint64_t got;
	uint64_t bad; /* out of order, wrong size or corrupt */
	uint64_t bytes;
	bool lossy;   /* payloads carry their seq, gaps allowed (restarts) */
};

struct node {
	uint64_t id;
	uint64_t cluster;
	struct peer_transport *t;
	int port;
	char url[64];
	pthread_mutex_t mu;
	struct link from[MAX_ID];
	uint64_t strangers; /* messages from ids outside the table */
	bool count_only;    /* the benchmark's payloads are not checked */
};

/*
 * LeakSanitizer hook (read only by sanitized builds). OpenSSL keeps a random
 * generator per thread, freed when the thread exits; TLS handshakes run on
 * gRPC's event-engine threads, which are still alive at process exit, so
 * now and then (1 run in 4) LSan reports those generators and the ciphers
 * they hold. Every such stack runs through libcrypto; a leak of ours (a
 * credentials object, a channel) is allocated by libgrpc and still shows.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcrypto.so\n";
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
	struct timespec ts = {0, (long)ms * 1000000};
	nanosleep(&ts, NULL);
}

/* Poll cond until true or ms pass; the value of cond at the end. */
#define WAIT_FOR(cond, ms)                                                  \
	({                                                                  \
		int64_t until_ = now_ms() + (ms);                           \
		bool ok_;                                                   \
		while (!(ok_ = (cond)) && now_ms() < until_)                \
			pause_ms(2);                                        \
		ok_;                                                        \
	})

/* ---- payloads: size and bytes are a function of (sender, seq) ---- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Mostly small, some 1-7 B (no room for a seq: lossless phases only), a
 * few tens of KiB and one in a hundred 1 MiB. */
static size_t size_for(uint64_t seq, bool lossy)
{
	uint64_t h = mix(seq);
	unsigned r = (unsigned)(h % 100);
	size_t n;
	if (r == 0)
		n = MIB;
	else if (r < 5)
		n = 1 + (h >> 8) % (64 * 1024);
	else if (r < 15)
		n = 1 + (h >> 8) % 7;
	else
		n = 8 + (h >> 8) % 2000;
	return lossy && n < 8 ? 8 : n;
}

static uint8_t byte_at(uint64_t from, uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 131 + i * 7 + from * 29 + (i >> 9));
}

static void fill(uint8_t *buf, uint64_t from, uint64_t seq, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = byte_at(from, seq, i);
	if (len >= 8)
		memcpy(buf, &seq, 8);
}

static void on_recv(void *arg, uint64_t from, const uint8_t *data, size_t len)
{
	struct node *n = arg;
	pthread_mutex_lock(&n->mu);
	if (from >= MAX_ID) {
		n->strangers++;
		pthread_mutex_unlock(&n->mu);
		return;
	}
	struct link *l = &n->from[from];
	uint64_t seq = l->next;
	if (len >= 8)
		memcpy(&seq, data, 8);
	bool ok = l->lossy ? seq >= l->next : seq == l->next;
	ok = ok && len == size_for(seq, l->lossy);
	for (size_t i = len >= 8 ? 8 : 0; ok && i < len; i++)
		ok = data[i] == byte_at(from, seq, i);
	if (n->count_only)
		ok = true;
	if (!ok) {
		if (l->bad++ < 5)
			fprintf(stderr, "node %" PRIu64 ": bad message from %" PRIu64 ": seq %" PRIu64
				" (expected %" PRIu64 "), len %zu\n",
				n->id, from, seq, l->next, len);
	}
	l->next = seq + 1;
	l->got++;
	l->bytes += len;
	pthread_mutex_unlock(&n->mu);
}

static uint64_t got(struct node *n, uint64_t from)
{
	pthread_mutex_lock(&n->mu);
	uint64_t v = n->from[from].got;
	pthread_mutex_unlock(&n->mu);
	return v;
}

static uint64_t bad(struct node *n)
{
	pthread_mutex_lock(&n->mu);
	uint64_t v = n->strangers;
	for (int i = 0; i < MAX_ID; i++)
		v += n->from[i].bad;
	pthread_mutex_unlock(&n->mu);
	return v;
}

/* ---- members ---- */

static void node_init(struct node *n, uint64_t id, uint64_t cluster)
{
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->cluster = cluster;
	pthread_mutex_init(&n->mu, NULL);
}

/* The keepalive timeout node_start gives (0: the transport's 2 s). */
static int keepalive_timeout_ms;

/* Start n's transport on port (0: any); https when tls != NULL. */
static int node_start(struct node *n, int port, const struct peer_tls *tls, size_t queue_bytes)
{
	char listen[64];
	snprintf(listen, sizeof(listen), "%s://127.0.0.1:%d", tls ? "https" : "http", port);
	const char *urls[] = {listen};
	struct peer_config cfg = {
		.listen_urls = urls,
		.n_listen_urls = 1,
		.self_id = n->id,
		.cluster_id = n->cluster,
		.queue_bytes = queue_bytes,
		.keepalive_timeout_ms = keepalive_timeout_ms,
		.poller = poller(),
	};
	if (tls)
		cfg.tls = *tls;
	char err[256];
	if (peer_start(&cfg, on_recv, n, &n->t, err, sizeof(err)) != 0) {
		fprintf(stderr, "node %" PRIu64 ": %s\n", n->id, err);
		return -1;
	}
	n->port = peer_listen_port(n->t, 0);
	snprintf(n->url, sizeof(n->url), "%s://127.0.0.1:%d", tls ? "https" : "http", n->port);
	return 0;
}

static void node_stop(struct node *n)
{
	peer_stop(n->t);
	n->t = NULL;
}

static void node_destroy(struct node *n)
{
	node_stop(n);
	pthread_mutex_destroy(&n->mu);
}

/* a dials b. */
static void dial(struct node *a, struct node *b)
{
	const char *u = b->url;
	EXPECT(peer_set(a->t, b->id, &u, 1) == 0);
}

/* Queue seq for to, retrying while the queue is full (lossless phases). */
static bool send_exact(struct node *a, struct node *to, uint64_t seq, uint8_t *buf, int64_t until)
{
	size_t len = size_for(seq, false);
	fill(buf, a->id, seq, len);
	while (!peer_send(a->t, to->id, buf, len)) {
		if (now_ms() > until)
			return false;
		pause_ms(1);
	}
	return true;
}

/* ---- many payloads between three members ---- */

#define N_MSGS 2000

struct sender {
	struct node *self;
	struct node *to[2];
	bool ok;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	uint8_t *buf = malloc(MIB);
	int64_t until = now_ms() + DEADLINE_MS;
	s->ok = buf != NULL;
	for (uint64_t seq = 0; s->ok && seq < N_MSGS; seq++)
		for (int k = 0; k < 2 && s->ok; k++)
			s->ok = send_exact(s->self, s->to[k], seq, buf, until);
	free(buf);
	return NULL;
}

static void test_three_members(void)
{
	struct node n[3];
	/* Every payload must arrive, so no stream may drop. The three share
	 * one polling thread, and under sanitizers on a loaded machine it
	 * was seen to answer a ping more than 2 s late behind the bulk data:
	 * the stream dropped and took queued payloads with it (which Raft
	 * would resend). Keepalive itself is test_silent_peer's. */
	keepalive_timeout_ms = 60000;
	for (int i = 0; i < 3; i++) {
		node_init(&n[i], (uint64_t)i + 1, 0xc1);
		/* A small queue: the senders meet "full" and retry. */
		EXPECT(node_start(&n[i], 0, NULL, 4 * MIB) == 0);
	}
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			if (i != j)
				dial(&n[i], &n[j]);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			if (i != j)
				EXPECT(WAIT_FOR(peer_connected(n[i].t, n[j].id), DEADLINE_MS));
	EXPECT(!peer_send(n[0].t, 7, (const uint8_t *)"x", 1)); /* not a member */

	int64_t t0 = now_ms();
	struct sender s[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		s[i] = (struct sender){&n[i], {&n[(i + 1) % 3], &n[(i + 2) % 3]}, false};
		pthread_create(&th[i], NULL, sender_main, &s[i]);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		EXPECT(s[i].ok);
	}
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			if (i != j)
				EXPECT(WAIT_FOR(got(&n[j], n[i].id) == N_MSGS, DEADLINE_MS));
	uint64_t bytes = 0;
	for (int i = 0; i < 3; i++) {
		EXPECT(bad(&n[i]) == 0);
		for (int j = 0; j < MAX_ID; j++)
			bytes += n[i].from[j].bytes;
	}
	printf("three members: %d payloads on each of 6 links (%" PRIu64 " MiB) in %" PRId64 " ms\n", N_MSGS,
	       bytes >> 20, now_ms() - t0);

	/* A removed member gets nothing more and cannot be sent to. */
	peer_remove(n[0].t, n[1].id);
	EXPECT(!peer_connected(n[0].t, n[1].id));
	EXPECT(!peer_send(n[0].t, n[1].id, (const uint8_t *)"x", 1));
	for (int i = 0; i < 3; i++)
		node_destroy(&n[i]);
	keepalive_timeout_ms = 0;
}

/* ---- a member stops and comes back on its port ---- */

static void set_lossy(struct node *n, uint64_t from)
{
	pthread_mutex_lock(&n->mu);
	n->from[from].lossy = true;
	pthread_mutex_unlock(&n->mu);
}

/* Send lossy payloads a -> b (paced) until cond or ms pass. */
#define SEND_UNTIL(a, b, seq, buf, cond, ms)                                             \
	({                                                                               \
		int64_t until_ = now_ms() + (ms);                                        \
		bool ok_;                                                                \
		while (!(ok_ = (cond)) && now_ms() < until_) {                           \
			size_t len_ = size_for(seq, true);                               \
			fill(buf, (a)->id, seq, len_);                                   \
			peer_send((a)->t, (b)->id, buf, len_);                           \
			seq++;                                                           \
			pause_ms(1);                                                     \
		}                                                                        \
		ok_;                                                                     \
	})

static void test_restart(void)
{
	struct node a, b;
	node_init(&a, 1, 0xc2);
	node_init(&b, 2, 0xc2);
	EXPECT(node_start(&a, 0, NULL, 0) == 0);
	EXPECT(node_start(&b, 0, NULL, 0) == 0);
	set_lossy(&b, a.id);
	set_lossy(&a, b.id);
	dial(&a, &b);
	dial(&b, &a);
	uint8_t *buf = malloc(MIB);
	uint64_t seq_ab = 0, seq_ba = 0;
	EXPECT(SEND_UNTIL(&a, &b, seq_ab, buf, got(&b, a.id) >= 50, DEADLINE_MS));
	EXPECT(SEND_UNTIL(&b, &a, seq_ba, buf, got(&a, b.id) >= 50, DEADLINE_MS));

	/* b goes away; a keeps sending (dropped or queued, both fine). */
	int port = b.port;
	node_stop(&b);
	EXPECT(SEND_UNTIL(&a, &b, seq_ab, buf, !peer_connected(a.t, b.id), DEADLINE_MS));
	uint64_t before = got(&b, a.id);
	uint64_t from_b_before = got(&a, b.id);
	SEND_UNTIL(&a, &b, seq_ab, buf, false, 300); /* sends while b is down */

	/* b comes back on the same port (retry: the old socket may linger). */
	EXPECT(WAIT_FOR(node_start(&b, port, NULL, 0) == 0, 10000));
	if (b.t == NULL) {
		free(buf);
		node_destroy(&a);
		node_destroy(&b);
		return;
	}
	dial(&b, &a);
	int64_t t0 = now_ms();
	EXPECT(SEND_UNTIL(&a, &b, seq_ab, buf, got(&b, a.id) >= before + 50, 15000));
	printf("restart: delivery resumed %" PRId64 " ms after the member came back\n", now_ms() - t0);
	EXPECT(SEND_UNTIL(&b, &a, seq_ba, buf, got(&a, b.id) >= from_b_before + 50, 15000));
	EXPECT(peer_connected(a.t, b.id));
	EXPECT(bad(&a) == 0 && bad(&b) == 0);
	free(buf);
	node_destroy(&a);
	node_destroy(&b);
}

/* ---- a member's first URL is dead: its second is used ---- */

static void test_second_url(void)
{
	struct node a, b, gone;
	node_init(&a, 1, 0xc7);
	node_init(&b, 2, 0xc7);
	node_init(&gone, 3, 0xc7);
	EXPECT(node_start(&a, 0, NULL, 0) == 0);
	EXPECT(node_start(&b, 0, NULL, 0) == 0);
	/* A port that was just free: nothing listens there now. */
	EXPECT(node_start(&gone, 0, NULL, 0) == 0);
	char dead[64];
	snprintf(dead, sizeof(dead), "%s", gone.url);
	node_destroy(&gone);
	const char *urls[] = {dead, b.url};
	EXPECT(peer_set(a.t, b.id, urls, 2) == 0);
	set_lossy(&b, a.id);
	uint8_t *buf = malloc(MIB);
	uint64_t seq = 0;
	EXPECT(SEND_UNTIL(&a, &b, seq, buf, got(&b, a.id) >= 20, DEADLINE_MS));
	EXPECT(peer_connected(a.t, b.id));
	/* New URLs for a member (only the dead one): the stream goes. */
	EXPECT(peer_set(a.t, b.id, urls, 1) == 0);
	EXPECT(WAIT_FOR(!peer_connected(a.t, b.id), DEADLINE_MS));
	EXPECT(bad(&b) == 0);
	free(buf);
	node_destroy(&a);
	node_destroy(&b);
}

/* ---- members removed and re-added under a sending thread ---- */

struct churn {
	struct node *a, *b;
	atomic_bool stop;
	uint64_t accepted;
};

static void *churn_sender(void *arg)
{
	struct churn *c = arg;
	uint8_t msg[300];
	memset(msg, 'c', sizeof(msg));
	for (uint64_t i = 0; !atomic_load(&c->stop); i++) {
		c->accepted += peer_send(c->a->t, c->b->id, msg, 1 + i % sizeof(msg));
		peer_connected(c->a->t, c->b->id);
		if (i % 64 == 0)
			pause_ms(1);
	}
	return NULL;
}

static void test_churn(void)
{
	struct node a, b;
	node_init(&a, 1, 0xc9);
	node_init(&b, 2, 0xc9);
	b.count_only = true; /* two streams' tails may interleave: count only */
	EXPECT(node_start(&a, 0, NULL, 0) == 0);
	EXPECT(node_start(&b, 0, NULL, 0) == 0);
	/* Another spelling of the same address: a URL change. Not "localhost":
	 * Debian's libcares leaks the name of each lookup (10 bytes, LSan). */
	char other[64];
	snprintf(other, sizeof(other), "http://127.0.0.1:%d/", b.port);
	const char *urls[] = {b.url, other};
	struct churn c = {&a, &b, false, 0};
	pthread_t th;
	pthread_create(&th, NULL, churn_sender, &c);
	for (int round = 0; round < 20; round++) {
		uint64_t before = got(&b, a.id);
		EXPECT(peer_set(a.t, b.id, urls + round % 2, 1) == 0);
		/* Sometimes remove it before it is even up, sometimes after. */
		if (round % 3 != 0)
			EXPECT(WAIT_FOR(got(&b, a.id) > before, DEADLINE_MS));
		if (round % 4 != 3)
			peer_remove(a.t, b.id);
	}
	/* Stop with a stream up and, likely, messages queued and in flight
	 * (peer_stop must not overlap other calls: the sender stops first). */
	EXPECT(peer_set(a.t, b.id, urls, 1) == 0);
	EXPECT(WAIT_FOR(peer_connected(a.t, b.id), DEADLINE_MS));
	atomic_store(&c.stop, true);
	pthread_join(th, NULL);
	node_stop(&a);
	EXPECT(c.accepted > 0);
	node_destroy(&a);
	node_destroy(&b);
}

/* ---- a peer that stops answering (a partition, SIGSTOP) ---- */

/* A TCP relay to 127.0.0.1:to that can freeze: while frozen it neither
 * accepts nor forwards, yet keeps every connection open, as a stopped
 * process or a dropped link would. */
struct relay {
	int lfd;
	int port;
	int to;
	atomic_bool frozen;
	atomic_bool stop;
	pthread_t th;
	int fds[32]; /* pairs: fds[2k] accepted, fds[2k+1] upstream; -1 unused */
};

static void relay_close_pair(struct relay *r, int k)
{
	close(r->fds[2 * k]);
	close(r->fds[2 * k + 1]);
	r->fds[2 * k] = r->fds[2 * k + 1] = -1;
}

static void relay_accept(struct relay *r)
{
	int c = accept(r->lfd, NULL, NULL);
	if (c < 0)
		return;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->to)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int u = socket(AF_INET, SOCK_STREAM, 0);
	if (u < 0 || connect(u, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(c);
		if (u >= 0)
			close(u);
		return;
	}
	for (int k = 0; k < 16; k++) {
		if (r->fds[2 * k] < 0) {
			r->fds[2 * k] = c;
			r->fds[2 * k + 1] = u;
			return;
		}
	}
	close(c);
	close(u);
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	static char buf[64 * 1024];
	while (!atomic_load(&r->stop)) {
		if (atomic_load(&r->frozen)) {
			pause_ms(5);
			continue;
		}
		struct pollfd pf[33];
		int n = 0;
		pf[n++] = (struct pollfd){r->lfd, POLLIN, 0};
		for (int i = 0; i < 32; i++)
			pf[n++] = (struct pollfd){r->fds[i], POLLIN, 0}; /* -1 is ignored */
		if (poll(pf, (nfds_t)n, 10) <= 0)
			continue;
		if (pf[0].revents & POLLIN)
			relay_accept(r);
		for (int i = 0; i < 32; i++) {
			if (r->fds[i] < 0 || !(pf[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t got = read(r->fds[i], buf, sizeof(buf));
			bool ok = got > 0;
			for (ssize_t off = 0; ok && off < got;) {
				/* MSG_NOSIGNAL: a side closed meanwhile is EPIPE, not SIGPIPE. */
				ssize_t w = send(r->fds[i ^ 1], buf + off, (size_t)(got - off), MSG_NOSIGNAL);
				ok = w > 0;
				off += ok ? w : 0;
			}
			if (!ok)
				relay_close_pair(r, i / 2);
		}
	}
	for (int k = 0; k < 16; k++)
		if (r->fds[2 * k] >= 0)
			relay_close_pair(r, k);
	return NULL;
}

static int relay_start(struct relay *r, int to)
{
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < 32; i++)
		r->fds[i] = -1;
	r->to = to;
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(r->lfd, 16) != 0 ||
	    getsockname(r->lfd, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	r->port = ntohs(sa.sin_port);
	return pthread_create(&r->th, NULL, relay_main, r);
}

static void relay_stop(struct relay *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->th, NULL);
	close(r->lfd);
}

static void test_silent_peer(void)
{
	struct node a, b;
	struct relay r;
	node_init(&a, 1, 0xc8);
	node_init(&b, 2, 0xc8);
	EXPECT(node_start(&a, 0, NULL, 0) == 0);
	EXPECT(node_start(&b, 0, NULL, 0) == 0);
	if (relay_start(&r, b.port) != 0) {
		EXPECT(!"relay");
		node_destroy(&a);
		node_destroy(&b);
		return;
	}
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", r.port);
	const char *u = url;
	EXPECT(peer_set(a.t, b.id, &u, 1) == 0);
	set_lossy(&b, a.id);
	uint8_t *buf = malloc(MIB);
	uint64_t seq = 0;
	EXPECT(SEND_UNTIL(&a, &b, seq, buf, got(&b, a.id) >= 20, DEADLINE_MS));

	atomic_store(&r.frozen, true);
	int64_t t0 = now_ms();
	EXPECT(WAIT_FOR(!peer_connected(a.t, b.id), 20000));
	int64_t noticed = now_ms() - t0;
	printf("silent peer: stream down after %" PRId64 " ms\n", noticed);
	EXPECT(noticed < 10000); /* keepalive 2 s + 2 s, with room for a loaded machine */

	atomic_store(&r.frozen, false);
	uint64_t before = got(&b, a.id);
	EXPECT(SEND_UNTIL(&a, &b, seq, buf, got(&b, a.id) >= before + 20, 20000));
	EXPECT(bad(&b) == 0);
	free(buf);
	node_destroy(&a);
	node_destroy(&b);
	relay_stop(&r);
}

/* ---- refusals: another cluster, another CA; a port already taken ---- */

/* a and b dial each other, then n messages go each way, every one exact. */
static void talk_both_ways(struct node *a, struct node *b, uint64_t n)
{
	dial(a, b);
	dial(b, a);
	EXPECT(WAIT_FOR(peer_connected(a->t, b->id) && peer_connected(b->t, a->id), DEADLINE_MS));
	uint8_t *buf = malloc(MIB);
	int64_t until = now_ms() + DEADLINE_MS;
	for (uint64_t seq = 0; seq < n; seq++) {
		EXPECT(send_exact(a, b, seq, buf, until));
		EXPECT(send_exact(b, a, seq, buf, until));
	}
	free(buf);
	EXPECT(WAIT_FOR(got(b, a->id) == n && got(a, b->id) == n, DEADLINE_MS));
}

/* Over a window, x and y exchange messages while a control pair (c -> y)
 * delivers: returns how many x -> y or y -> x messages arrived. */
static uint64_t exchange_refused(struct node *x, struct node *y, struct node *c)
{
	uint8_t *buf = malloc(MIB);
	uint64_t seq_x = 0, seq_y = 0, seq_c = 0;
	set_lossy(y, x->id);
	set_lossy(x, y->id);
	set_lossy(y, c->id);
	dial(x, y);
	dial(y, x);
	dial(c, y);
	/* The control link is up and delivers ... */
	EXPECT(SEND_UNTIL(c, y, seq_c, buf, got(y, c->id) >= 20, DEADLINE_MS));
	/* ... and for a while (several re-dials) nothing else does. */
	for (int64_t until = now_ms() + 1500; now_ms() < until;) {
		SEND_UNTIL(x, y, seq_x, buf, false, 5);
		SEND_UNTIL(y, x, seq_y, buf, false, 5);
		EXPECT(!peer_connected(x->t, y->id));
		EXPECT(!peer_connected(y->t, x->id));
	}
	free(buf);
	return got(y, x->id) + got(x, y->id);
}

static void test_cluster_mismatch(void)
{
	struct node x, y, c;
	node_init(&x, 3, 0xbad);
	node_init(&y, 1, 0xc3);
	node_init(&c, 2, 0xc3);
	EXPECT(node_start(&x, 0, NULL, 0) == 0);
	EXPECT(node_start(&y, 0, NULL, 0) == 0);
	EXPECT(node_start(&c, 0, NULL, 0) == 0);
	EXPECT(exchange_refused(&x, &y, &c) == 0);
	EXPECT(bad(&y) == 0);
	node_destroy(&x);
	node_destroy(&y);
	node_destroy(&c);
}

static void test_port_taken(void)
{
	struct node a, b;
	node_init(&a, 1, 0xc4);
	node_init(&b, 2, 0xc4);
	EXPECT(node_start(&a, 0, NULL, 0) == 0);
	fprintf(stderr, "(an error about a taken port is expected next)\n");
	EXPECT(node_start(&b, a.port, NULL, 0) != 0);
	EXPECT(b.t == NULL);
	node_destroy(&a);
	node_destroy(&b);
}

static const char *source_dir(void)
{
	const char *s = getenv("METAD_SOURCE");
	return s && *s ? s : METAD_SOURCE_DIR;
}

/* The test PKI of certs/make-certs.sh in a temporary directory. */
struct test_certs {
	char dir[64];
	char cert[512], key[512], ca[512], ocert[512], okey[512];
};

static bool certs_make(struct test_certs *c)
{
	snprintf(c->dir, sizeof(c->dir), "/tmp/metad-peer-certs.XXXXXX");
	if (mkdtemp(c->dir) == NULL) {
		EXPECT(!"mkdtemp");
		return false;
	}
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "bash '%s/certs/make-certs.sh' '%s'", source_dir(), c->dir);
	int rc = system(cmd);
	EXPECT(rc == 0);
	snprintf(c->cert, sizeof(c->cert), "%s/server.pem", c->dir);
	snprintf(c->key, sizeof(c->key), "%s/server-key.pem", c->dir);
	snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", c->dir);
	snprintf(c->ocert, sizeof(c->ocert), "%s/other-server.pem", c->dir);
	snprintf(c->okey, sizeof(c->okey), "%s/other-server-key.pem", c->dir);
	return rc == 0;
}

static void certs_remove(const struct test_certs *c)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	EXPECT(system(cmd) == 0);
}

static void test_tls(void)
{
	struct test_certs c;
	if (!certs_make(&c))
		return;
	struct peer_tls tls = {.cert_file = c.cert, .key_file = c.key, .ca_file = c.ca,
			       .client_cert_auth = true};
	/* From the other CA, yet trusting ours: only its own certificate is
	 * wrong, so each side's refusal is what is tested. */
	struct peer_tls other = {.cert_file = c.ocert, .key_file = c.okey, .ca_file = c.ca,
				 .client_cert_auth = true};

	struct node a, b, x;
	node_init(&a, 1, 0xc5);
	node_init(&b, 2, 0xc5);
	node_init(&x, 3, 0xc5);
	EXPECT(node_start(&a, 0, &tls, 0) == 0);
	EXPECT(node_start(&b, 0, &tls, 0) == 0);
	EXPECT(node_start(&x, 0, &other, 0) == 0);
	talk_both_ways(&a, &b, 300);
	/* x -> a: a refuses x's client certificate; a -> x: a refuses x's
	 * server certificate. b -> a is the control. */
	EXPECT(exchange_refused(&x, &a, &b) == 0);
	EXPECT(bad(&a) == 0 && bad(&b) == 0);
	node_destroy(&a);
	node_destroy(&b);
	node_destroy(&x);

	/* A plaintext URL with TLS flags stays plaintext; a TLS URL without
	 * a certificate is an error. */
	struct node n;
	node_init(&n, 1, 0xc5);
	struct peer_tls none = {.cert_file = NULL};
	EXPECT(node_start(&n, 0, &none, 0) != 0);
	node_destroy(&n);
	certs_remove(&c);
}

/* --peer-auto-tls, --peer-cert-allowed-cn, --peer-cert-allowed-hostname. */
static void test_tls_options(void)
{
	struct test_certs c;
	if (!certs_make(&c))
		return;
	const char *cert = c.cert, *key = c.key, *ca = c.ca, *ocert = c.ocert, *okey = c.okey;

	/* Self-signed (auto TLS): certificates no one can verify, from two
	 * unrelated CAs, still carry traffic both ways, as etcd's do. */
	struct peer_tls self = {.cert_file = cert, .key_file = key, .self_signed = true};
	struct peer_tls oself = {.cert_file = ocert, .key_file = okey, .self_signed = true};
	struct node a, x;
	node_init(&a, 1, 0xc7);
	node_init(&x, 2, 0xc7);
	EXPECT(node_start(&a, 0, &self, 0) == 0);
	EXPECT(node_start(&x, 0, &oself, 0) == 0);
	talk_both_ways(&a, &x, 20);
	node_destroy(&a);
	node_destroy(&x);

	/* Allowed CN / hostname: the right one lets a and b talk; a member
	 * asking for another refuses both as client and as server. */
	const char *cns[] = {"metad server", "someone else"};
	const char *hosts[] = {"localhost", "example.com"};
	for (int k = 0; k < 2; k++) {
		struct peer_tls ok = {.cert_file = cert, .key_file = key, .ca_file = ca,
				      .client_cert_auth = true};
		struct peer_tls wrong = ok;
		if (k == 0) {
			ok.allowed_cn = cns[0];
			wrong.allowed_cn = cns[1];
		} else {
			ok.allowed_hostname = hosts[0];
			wrong.allowed_hostname = hosts[1];
		}
		struct node b, c, y;
		node_init(&b, 1, 0xc8);
		node_init(&c, 2, 0xc8);
		node_init(&y, 3, 0xc8);
		EXPECT(node_start(&b, 0, &ok, 0) == 0);
		EXPECT(node_start(&c, 0, &ok, 0) == 0);
		EXPECT(node_start(&y, 0, &wrong, 0) == 0);
		/* c -> b is the control; y and b refuse each other. */
		EXPECT(exchange_refused(&y, &b, &c) == 0);
		EXPECT(bad(&b) == 0 && bad(&c) == 0);
		node_destroy(&b);
		node_destroy(&c);
		node_destroy(&y);
	}
	certs_remove(&c);
}

/* ---- a figure: 100-byte messages, one direction ---- */

static void bench_small(void)
{
	struct node a, b;
	node_init(&a, 1, 0xc6);
	node_init(&b, 2, 0xc6);
	EXPECT(node_start(&a, 0, NULL, 0) == 0);
	EXPECT(node_start(&b, 0, NULL, 0) == 0);
	dial(&a, &b);
	EXPECT(WAIT_FOR(peer_connected(a.t, b.id), DEADLINE_MS));
	pthread_mutex_lock(&b.mu);
	b.count_only = true; /* before any message can arrive */
	pthread_mutex_unlock(&b.mu);
	const char *env = getenv("METAD_PEER_BENCH_N");
	uint64_t n = env ? strtoull(env, NULL, 10) : 200000;
	uint8_t msg[100];
	memset(msg, 'm', sizeof(msg));
	int64_t t0 = now_ms();
	uint64_t sent = 0, full = 0;
	while (sent < n) {
		if (peer_send(a.t, b.id, msg, sizeof(msg)))
			sent++;
		else if (full++ % 1024 == 0)
			sched_yield();
	}
	EXPECT(WAIT_FOR(got(&b, a.id) == n, DEADLINE_MS));
	int64_t ms = now_ms() - t0;
	printf("100-byte payloads: %" PRIu64 " in %" PRId64 " ms = %.0f msg/s\n", n, ms,
	       ms > 0 ? n * 1000.0 / ms : 0.0);
	node_destroy(&a);
	node_destroy(&b);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	test_port_taken();
	test_three_members();
	test_restart();
	test_second_url();
	test_silent_peer();
	test_churn();
	test_cluster_mismatch();
	test_tls();
	test_tls_options();
	bench_small();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures ? 1 : 0;
}

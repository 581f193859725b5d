/*
 * etcdapi/listen.c — accepting on the client port and telling gRPC from
 * HTTP by the first bytes (see listen.h for the rules).
 *
 * One acceptor thread runs an epoll loop over the listening sockets and the
 * accepted connections that are still undecided. Deciding only peeks, so
 * whoever takes the connection reads it from its first byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "etcdapi/http.h"
#include "etcdapi/listen.h"

#define MAX_LISTENERS 16
#define PEEK_BYTES (16 * 1024 + 5) /* one TLS record: a ClientHello fits */
#define DECIDE_TIMEOUT_S 10
#define RELAY_BUF (64 * 1024)

struct pending {
	struct pending *next;
	int fd;
	bool tls;
	time_t since;
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

struct api_listen {
	int fds[MAX_LISTENERS];
	bool tls[MAX_LISTENERS];
	size_t n;
	char tls_addr[108]; /* abstract socket name of gRPC's TLS listener */
	bool tls13_min;     /* --tls-min-version TLS1.3 */
	int ep;
	int wake[2]; /* pipe: stop the acceptor */
	pthread_t thread;
	bool started;
	grpc_server *server;
	struct api_http *http;
	struct pending *pend;
	/* relays of TLS gRPC connections */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t relays;
	bool stopping;
};

void api_listen_require_tls13(struct api_listen *l, bool on)
{
	l->tls13_min = on;
}

int api_listen_is_tcp(const char *url)
{
	return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

static int bind_url(const char *url, bool *tls, char *err, size_t errlen)
{
	*tls = strncmp(url, "https://", 8) == 0;
	const char *p = url + (*tls ? 8 : 7);
	char host[300], port[16];
	size_t n = strcspn(p, "/");
	char hp[300];
	if (n == 0 || n >= sizeof(hp)) {
		snprintf(err, errlen, "invalid listen URL %s", url);
		return -1;
	}
	memcpy(hp, p, n);
	hp[n] = 0;
	char *colon = strrchr(hp, ':');
	if (colon == NULL || colon[1] == 0) {
		snprintf(err, errlen, "invalid listen URL %s (no port)", url);
		return -1;
	}
	*colon = 0;
	const char *h = hp;
	if (h[0] == '[') { /* [::1]:2379 */
		h++;
		size_t hl = strlen(h);
		if (hl > 0 && h[hl - 1] == ']')
			((char *)h)[hl - 1] = 0;
	}
	snprintf(host, sizeof(host), "%s", h);
	snprintf(port, sizeof(port), "%s", colon + 1);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	int rv = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rv != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", url, gai_strerror(rv));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
			snprintf(err, errlen, "cannot listen on %s: %s", url, strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

struct api_listen *api_listen_open(const char *const *urls, size_t n, char *err, size_t errlen)
{
	struct api_listen *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->ep = -1;
	l->wake[0] = l->wake[1] = -1;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	for (size_t i = 0; i < n; i++) {
		if (!api_listen_is_tcp(urls[i]))
			continue;
		if (strncmp(urls[i], "https://", 8) == 0 && l->tls_addr[0] == 0)
			snprintf(l->tls_addr, sizeof(l->tls_addr), "unix-abstract:metad-%d-%p-tls",
				 (int)getpid(), (void *)l);
		if (l->n == MAX_LISTENERS) {
			snprintf(err, errlen, "too many client URLs");
			goto fail;
		}
		int fd = bind_url(urls[i], &l->tls[l->n], err, errlen);
		if (fd < 0)
			goto fail;
		l->fds[l->n++] = fd;
	}
	return l;
fail:
	api_listen_close(l);
	return NULL;
}

const char *api_listen_tls_addr(const struct api_listen *l)
{
	return l->tls_addr[0] ? l->tls_addr : NULL;
}

/* ---- deciding ---- */

enum verdict { UNDECIDED, GRPC, HTTP, DROP };

static enum verdict plain_verdict(const uint8_t *b, size_t n)
{
	static const char preface[] = "PRI * HTTP/2.0";
	size_t m = n < 4 ? n : 4;
	if (memcmp(b, preface, m) != 0)
		return HTTP;
	return n < 4 ? UNDECIDED : GRPC;
}

static size_t be(const uint8_t *p, int bytes)
{
	size_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* The ALPN names offered in a TLS ClientHello: HTTP when "http/1.1" is
 * offered or ALPN is absent, gRPC otherwise; DROP when TLS 1.3 is required
 * and not among its supported_versions. Only bounds-checked reads of the
 * peeked record. */
static enum verdict tls_verdict(const uint8_t *b, size_t n, bool require_tls13)
{
	if (n < 5)
		return UNDECIDED;
	if (b[0] != 0x16) /* not a handshake record: let the TLS stack refuse it */
		return HTTP;
	size_t rec = be(b + 3, 2);
	if (n < 5 + rec)
		return n >= PEEK_BYTES ? HTTP : UNDECIDED;
	const uint8_t *p = b + 5, *end = b + 5 + rec;
	if (end - p < 4 || p[0] != 1) /* ClientHello */
		return HTTP;
	size_t hl = be(p + 1, 3);
	p += 4;
	if ((size_t)(end - p) < hl) /* split over records: rare; let TLS decide */
		return HTTP;
	end = p + hl;
	if (end - p < 34)
		return HTTP;
	p += 34; /* version, random */
	if (end - p < 1 || (size_t)(end - p) < 1 + (size_t)p[0])
		return HTTP;
	p += 1 + p[0]; /* session id */
	if (end - p < 2 || (size_t)(end - p) < 2 + be(p, 2))
		return HTTP;
	p += 2 + be(p, 2); /* cipher suites */
	if (end - p < 1 || (size_t)(end - p) < 1 + (size_t)p[0])
		return HTTP;
	p += 1 + p[0]; /* compression */
	if (end - p < 2)
		return HTTP; /* no extensions: no ALPN */
	size_t el = be(p, 2);
	p += 2;
	if ((size_t)(end - p) < el)
		return HTTP;
	end = p + el;
	enum verdict v = HTTP; /* no ALPN: HTTP */
	bool tls13 = false;
	while (end - p >= 4) {
		size_t type = be(p, 2), len = be(p + 2, 2);
		p += 4;
		if ((size_t)(end - p) < len)
			return HTTP;
		if (type == 16 && len >= 2) { /* application_layer_protocol_negotiation */
			const uint8_t *q = p + 2, *qe = p + 2 + be(p, 2);
			if (qe > p + len)
				return HTTP;
			v = GRPC;
			while (q < qe) {
				size_t nl = q[0];
				if ((size_t)(qe - q) < 1 + nl)
					return HTTP;
				if (nl == 8 && memcmp(q + 1, "http/1.1", 8) == 0)
					v = HTTP;
				q += 1 + nl;
			}
		} else if (type == 43 && len >= 1 && (size_t)p[0] + 1 <= len) { /* supported_versions */
			for (size_t k = 1; k + 1 <= p[0]; k += 2)
				tls13 = tls13 || be(p + k, 2) == 0x0304;
		}
		p += len;
	}
	/* --tls-min-version TLS1.3: a client that cannot speak it is refused
	 * here (gRPC core's C API has no minimum version; GnuTLS also refuses
	 * it for HTTPS). One that offers it gets it: both stacks pick the
	 * highest version offered. */
	return require_tls13 && !tls13 ? DROP : v;
}

/* ---- relaying TLS gRPC connections to gRPC core's own TLS listener ---- */

struct relay {
	struct api_listen *l;
	int a, b;
};

/* Move what a has to b through buf; false when the stream ended. */
static bool pump(int from, int to, uint8_t *buf, size_t *len, size_t *off, bool *eof)
{
	if (*len == 0 && !*eof) {
		ssize_t r = recv(from, buf, RELAY_BUF, MSG_DONTWAIT);
		if (r == 0)
			*eof = true;
		else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return false;
		else if (r > 0) {
			*len = (size_t)r;
			*off = 0;
		}
	}
	while (*len > 0) {
		ssize_t w = send(to, buf + *off, *len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			return false;
		}
		*off += (size_t)w;
		*len -= (size_t)w;
	}
	return true;
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	pthread_setname_np(pthread_self(), "metad-tlsrelay");
	uint8_t *ab = malloc(RELAY_BUF), *ba = malloc(RELAY_BUF);
	size_t al = 0, ao = 0, bl = 0, bo = 0;
	bool aeof = false, beof = false, ahalf = false, bhalf = false;
	while (ab != NULL && ba != NULL) {
		struct pollfd p[2] = {{.fd = r->a}, {.fd = r->b}};
		if (al == 0 && !aeof)
			p[0].events |= POLLIN;
		if (bl == 0 && !beof)
			p[1].events |= POLLIN;
		if (al > 0)
			p[1].events |= POLLOUT;
		if (bl > 0)
			p[0].events |= POLLOUT;
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		pthread_mutex_lock(&r->l->mu);
		bool stop = r->l->stopping;
		pthread_mutex_unlock(&r->l->mu);
		if (stop)
			break;
		if (!pump(r->a, r->b, ab, &al, &ao, &aeof) || !pump(r->b, r->a, ba, &bl, &bo, &beof))
			break;
		if (aeof && al == 0 && !ahalf) {
			shutdown(r->b, SHUT_WR);
			ahalf = true;
		}
		if (beof && bl == 0 && !bhalf) {
			shutdown(r->a, SHUT_WR);
			bhalf = true;
		}
		if (ahalf && bhalf)
			break;
	}
	free(ab);
	free(ba);
	close(r->a);
	close(r->b);
	pthread_mutex_lock(&r->l->mu);
	r->l->relays--;
	pthread_cond_broadcast(&r->l->cv);
	pthread_mutex_unlock(&r->l->mu);
	free(r);
	return NULL;
}

static void relay_start(struct api_listen *l, int fd)
{
	int b = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	/* "unix-abstract:NAME": a leading NUL byte, then NAME. */
	const char *name = l->tls_addr + strlen("unix-abstract:");
	size_t nl = strlen(name);
	memcpy(sa.sun_path + 1, name, nl);
	socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nl);
	struct relay *r = b >= 0 ? malloc(sizeof(*r)) : NULL;
	if (r == NULL || connect(b, (struct sockaddr *)&sa, sl) != 0) {
		free(r);
		if (b >= 0)
			close(b);
		close(fd);
		return;
	}
	*r = (struct relay){l, fd, b};
	pthread_mutex_lock(&l->mu);
	l->relays++;
	pthread_mutex_unlock(&l->mu);
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	if (pthread_create(&t, &at, relay_main, r) != 0) {
		pthread_mutex_lock(&l->mu);
		l->relays--;
		pthread_mutex_unlock(&l->mu);
		close(fd);
		close(b);
		free(r);
	}
	pthread_attr_destroy(&at);
}

/* ---- the acceptor ---- */

static void hand_over(struct api_listen *l, struct pending *p, enum verdict v)
{
	epoll_ctl(l->ep, EPOLL_CTL_DEL, p->fd, NULL);
	if (v == GRPC && !p->tls) {
		grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
		grpc_server_add_channel_from_fd(l->server, p->fd, creds);
		grpc_server_credentials_release(creds);
	} else if (v == GRPC) {
		relay_start(l, p->fd);
	} else if (v == HTTP) {
		api_http_add_conn(l->http, p->fd, p->tls, (struct sockaddr *)&p->addr, p->addr_len);
	} else {
		close(p->fd);
	}
}

static void on_readable(struct api_listen *l, struct pending *p, uint8_t *buf)
{
	ssize_t r = recv(p->fd, buf, PEEK_BYTES, MSG_PEEK | MSG_DONTWAIT);
	enum verdict v;
	if (r == 0)
		v = DROP;
	else if (r < 0)
		v = (errno == EAGAIN || errno == EINTR) ? UNDECIDED : DROP;
	else
		v = p->tls ? tls_verdict(buf, (size_t)r, l->tls13_min) : plain_verdict(buf, (size_t)r);
	if (v == UNDECIDED)
		return;
	for (struct pending **pp = &l->pend; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	hand_over(l, p, v);
	free(p);
}

static void accept_all(struct api_listen *l, size_t i)
{
	for (;;) {
		struct pending *p = calloc(1, sizeof(*p));
		if (p == NULL)
			return;
		p->addr_len = sizeof(p->addr);
		int fd = accept4(l->fds[i], (struct sockaddr *)&p->addr, &p->addr_len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			free(p);
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		p->fd = fd;
		p->tls = l->tls[i];
		p->since = time(NULL);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = p};
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			close(fd);
			free(p);
			continue;
		}
		p->next = l->pend;
		l->pend = p;
	}
}

/* epoll data: listeners are tagged by their index + 1 as a small integer,
 * the wake pipe by 0, connections by their struct pending pointer. */
#define TAG_MAX (MAX_LISTENERS + 1)

static void *acceptor_main(void *arg)
{
	struct api_listen *l = arg;
	pthread_setname_np(pthread_self(), "metad-accept");
	uint8_t *buf = malloc(PEEK_BYTES);
	struct epoll_event evs[64];
	bool stop = buf == NULL;
	while (!stop) {
		int n = epoll_wait(l->ep, evs, 64, 1000);
		for (int i = 0; i < n; i++) {
			uintptr_t tag = (uintptr_t)evs[i].data.ptr;
			if (tag == 0)
				stop = true;
			else if (tag < TAG_MAX)
				accept_all(l, tag - 1);
			else
				on_readable(l, evs[i].data.ptr, buf);
		}
		time_t now = time(NULL);
		for (struct pending **pp = &l->pend; *pp;) {
			struct pending *p = *pp;
			if (now - p->since >= DECIDE_TIMEOUT_S) {
				*pp = p->next;
				epoll_ctl(l->ep, EPOLL_CTL_DEL, p->fd, NULL);
				close(p->fd);
				free(p);
			} else {
				pp = &p->next;
			}
		}
	}
	free(buf);
	return NULL;
}

int api_listen_start(struct api_listen *l, grpc_server *server, struct api_http *http)
{
	l->server = server;
	l->http = http;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0 || pipe2(l->wake, O_CLOEXEC) != 0)
		return -1;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake[0], &ev);
	for (size_t i = 0; i < l->n; i++) {
		ev.data.ptr = (void *)(uintptr_t)(i + 1);
		epoll_ctl(l->ep, EPOLL_CTL_ADD, l->fds[i], &ev);
	}
	if (pthread_create(&l->thread, NULL, acceptor_main, l) != 0)
		return -1;
	l->started = true;
	return 0;
}

void api_listen_close(struct api_listen *l)
{
	if (l == NULL)
		return;
	if (l->started) {
		ssize_t w = write(l->wake[1], "x", 1);
		(void)w;
		pthread_join(l->thread, NULL);
	}
	while (l->pend != NULL) {
		struct pending *p = l->pend;
		l->pend = p->next;
		close(p->fd);
		free(p);
	}
	for (size_t i = 0; i < l->n; i++)
		close(l->fds[i]);
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	while (l->relays > 0)
		pthread_cond_wait(&l->cv, &l->mu);
	pthread_mutex_unlock(&l->mu);
	if (l->ep >= 0)
		close(l->ep);
	if (l->wake[0] >= 0) {
		close(l->wake[0]);
		close(l->wake[1]);
	}
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}

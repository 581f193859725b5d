/*
 * etcdapi/server.c — the gRPC core server: methods, ports, TLS, CQ threads.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "etcdapi/api.h"
#include "etcdapi/call.h"
#include "etcdapi/http.h"
#include "etcdapi/listen.h"
#include "etcdapi/tls_opts.h"
#include "etcdapi/metrics.h"
#include "etcdapi/offload.h"
#include "etcdapi/stream.h"
#include "etcdapi/stream_methods.h"

#define GRPC_OVERHEAD_BYTES (512 * 1024) /* etcd: receive limit = max request + 512 KiB */
#define SHUTDOWN_GRACE_S 10
/*
 * Two completion queues, each with one thread. CQ_CALLS is core's polling
 * queue (core/poller.h: its thread also serves the peer transport): it
 * polls the sockets and serves every unary call. CQ_STREAMS is non-polling
 * and carries the streams (Watch, LeaseKeepAlive, Observe), on a thread of
 * this module's. gRPC's epoll engine has one
 * poller for all polling CQs, and a completion for a CQ whose thread is not
 * polling costs a kick (eventfd + futex) and two wake-ups: with one polling
 * CQ a unary call never takes one (one client's puts: ~3,600/s vs ~3,000/s
 * with two polling CQs; 1,000-client ranges 71k/s vs 63k/s), while watch
 * fan-out keeps its own thread (with every call on one CQ, 10,000 watchers
 * got 0.25M events/s instead of 4M).
 */
enum { CQ_CALLS, CQ_STREAMS, N_CQ };

struct api_server {
	grpc_server *server;
	struct core *core;
	grpc_completion_queue *cqs[N_CQ]; /* CQ_CALLS is core's */
	pthread_t streams_thread;
	grpc_completion_queue *shutdown_cq;
	int client_cert_auth; /* --client-cert-auth: a verified certificate's CN is a user */
	size_t recv_max;      /* the largest message a call may send us (api_recv_max) */
	pthread_t monitor;    /* monitor_main */
	bool monitor_started;
	pthread_mutex_t mmu;
	pthread_cond_t mcv;
	bool mstop;
	struct api_listen *listen; /* the client port, shared with HTTP (listen.c) */
	struct api_http *http;
};

/* etcd's monitorLeader: every election timeout, count those without a
 * leader in a row; from three on, end the streams that asked for one
 * (hasleader), which would otherwise wait on a member cut off from its
 * cluster. New ones are refused at the start meanwhile (call.c). */
static void *monitor_main(void *arg)
{
	struct api_server *s = arg;
	pthread_setname_np(pthread_self(), "metad-noleader");
	int64_t ms = core_config(s->core)->election_ms > 0 ? core_config(s->core)->election_ms : 1000;
	int none = 0;
	pthread_mutex_lock(&s->mmu);
	while (!s->mstop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		int64_t ns = until.tv_nsec + (ms % 1000) * 1000000;
		until.tv_sec += ms / 1000 + ns / 1000000000;
		until.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&s->mcv, &s->mmu, &until);
		if (s->mstop)
			break;
		none = core_has_leader(s->core) ? 0 : none + 1;
		if (none >= 3) {
			pthread_mutex_unlock(&s->mmu);
			api_stream_end_leaderless();
			pthread_mutex_lock(&s->mmu);
		}
	}
	pthread_mutex_unlock(&s->mmu);
	return NULL;
}

int api_client_cert_auth(const struct api_server *srv)
{
	return srv->client_cert_auth;
}

size_t api_recv_max(const struct api_server *srv)
{
	return srv->recv_max;
}

grpc_server *api_grpc_server(const struct api_server *srv)
{
	return srv->server;
}

grpc_completion_queue *api_polling_cq(const struct api_server *srv)
{
	return srv->cqs[CQ_CALLS];
}

struct core *api_core_of(const struct api_server *srv)
{
	return srv->core;
}

static void *streams_main(void *arg)
{
	pthread_setname_np(pthread_self(), "metad-stream");
	core_poller_run(arg);
	return NULL;
}

/* With --client-crl-file or --client-cert-allowed-hostname: gRPC core's TLS
 * credentials, which take a directory of hashed CRLs and a verifier of our
 * own (the older SSL ones take neither). */
static grpc_server_credentials *crl_creds(const struct api_tls *t, const char *cert,
					  const char *key, const char *ca,
					  grpc_ssl_client_certificate_request_type req, char *err,
					  size_t errlen)
{
	if (t->crl_file != NULL &&
	    api_tls_crl_dir("--client-crl-file", t->crl_file, t->crl_dir, err, errlen) != 0)
		return NULL;
	grpc_tls_identity_pairs *pairs = grpc_tls_identity_pairs_create();
	grpc_tls_identity_pairs_add_pair(pairs, key, cert);
	grpc_tls_certificate_provider *p = grpc_tls_certificate_provider_static_data_create(ca, pairs);
	grpc_tls_credentials_options *o = grpc_tls_credentials_options_create();
	grpc_tls_credentials_options_set_certificate_provider(o, p);
	if (ca != NULL)
		grpc_tls_credentials_options_watch_root_certs(o);
	grpc_tls_credentials_options_watch_identity_key_cert_pairs(o);
	grpc_tls_credentials_options_set_cert_request_type(o, req);
	if (t->crl_file != NULL)
		grpc_tls_credentials_options_set_crl_directory(o, t->crl_dir);
	/* As etcd's Go TLS: only a certificate asked for is checked. */
	if (t->allowed_hostname != NULL && req != GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE) {
		grpc_tls_certificate_verifier *v = core_tls_names_verifier(NULL, t->allowed_hostname);
		grpc_tls_credentials_options_set_certificate_verifier(o, v);
		grpc_tls_certificate_verifier_release(v);
	}
	grpc_server_credentials *creds = grpc_tls_server_credentials_create(o); /* takes o */
	grpc_tls_certificate_provider_release(p);
	return creds;
}

static grpc_server_credentials *tls_creds(const struct api_tls *t, char *err, size_t errlen)
{
	char *cert = core_read_pem(t->cert_file, "--cert-file", err, errlen);
	char *key = cert ? core_read_pem(t->key_file, "--key-file", err, errlen) : NULL;
	char *ca = key && t->trusted_ca_file
			   ? core_read_pem(t->trusted_ca_file, "--trusted-ca-file", err, errlen)
			   : NULL;
	grpc_server_credentials *creds = NULL;
	if (cert && key && (ca || !t->trusted_ca_file)) {
		grpc_ssl_pem_key_cert_pair pair = {key, cert};
		grpc_ssl_client_certificate_request_type req = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
		if (t->client_cert_auth)
			req = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
		else if (ca)
			req = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
		if (t->crl_file != NULL || t->allowed_hostname != NULL)
			creds = crl_creds(t, cert, key, ca, req, err, errlen);
		else
			creds = grpc_ssl_server_credentials_create_ex(ca, &pair, 1, req, NULL);
		if (creds == NULL)
			snprintf(err, errlen, "bad TLS certificate or key");
	}
	free(cert);
	free(key);
	free(ca);
	return creds;
}

/* "http://127.0.0.1:2379" -> "127.0.0.1:2379"; sets *tls for https. */
static int url_addr(const char *url, char *addr, size_t len, int *tls)
{
	const char *p;
	*tls = 0;
	if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncmp(url, "https://", 8) == 0) {
		p = url + 8;
		*tls = 1;
	} else if (strncmp(url, "unix://", 7) == 0 || strncmp(url, "unixs://", 8) == 0) {
		snprintf(addr, len, "unix:%s", strchr(url, '/') + 2);
		*tls = url[4] == 's';
		return 0;
	} else
		p = url;
	size_t n = strcspn(p, "/");
	if (n == 0 || n >= len)
		return -1;
	memcpy(addr, p, n);
	addr[n] = 0;
	return 0;
}

static int add_ports(struct api_server *s, const struct api_config *cfg, char *err, size_t errlen)
{
	/* http(s):// URLs are bound by listen.c, which hands gRPC connections
	 * to gRPC core by fd (plain) or through gRPC's own TLS listener on a
	 * private abstract unix socket (TLS); see listen.h. */
	const char *tls_addr = api_listen_tls_addr(s->listen);
	for (size_t i = 0; i < cfg->n_listen_urls; i++) {
		char addr[512];
		int tls;
		if (api_listen_is_tcp(cfg->listen_urls[i])) {
			if (strncmp(cfg->listen_urls[i], "https://", 8) != 0 || tls_addr == NULL)
				continue;
			snprintf(addr, sizeof(addr), "%s", tls_addr);
			tls_addr = NULL; /* added once */
			tls = 1;
		} else if (url_addr(cfg->listen_urls[i], addr, sizeof(addr), &tls) != 0) {
			snprintf(err, errlen, "invalid listen URL %s", cfg->listen_urls[i]);
			return -1;
		}
		grpc_server_credentials *creds;
		if (tls) {
			if (cfg->tls.cert_file == NULL || cfg->tls.key_file == NULL) {
				snprintf(err, errlen, "TLS URL %s needs --cert-file and --key-file",
					 cfg->listen_urls[i]);
				return -1;
			}
			creds = tls_creds(&cfg->tls, err, errlen);
			if (creds == NULL)
				return -1;
		} else {
			creds = grpc_insecure_server_credentials_create();
		}
		int port = grpc_server_add_http2_port(s->server, addr, creds);
		grpc_server_credentials_release(creds);
		if (port == 0) {
			snprintf(err, errlen, "cannot listen on %s", cfg->listen_urls[i]);
			return -1;
		}
	}
	return 0;
}

static void register_methods(struct api_server *s, struct api_method *tab)
{
	for (struct api_method *m = tab; m->path; m++)
		api_metrics_register(m->path, m->client_stream, m->client_stream || m->server_stream);
	for (struct api_method *m = tab; m->path; m++)
		m->registered = grpc_server_register_method(
			s->server, m->path, NULL,
			m->client_stream ? GRPC_SRM_PAYLOAD_NONE : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
			0);
}

/* Arm each method of tab that belongs on queue i. */
static void arm_all(struct api_server *s, int i, struct api_method *tab)
{
	for (struct api_method *m = tab; m->path; m++) {
		bool stream = m->client_stream || m->server_stream;
		if (stream != (i == CQ_STREAMS))
			continue;
		for (int k = 0; k < m->prearm; k++)
			api_call_arm(s, s->cqs[i], m);
	}
}

/* gRPC-Go's keepalive defaults, which etcd keeps when a flag is 0. */
#define GRPC_GO_MIN_PING_MS (5 * 60 * 1000)
#define GRPC_GO_PING_MS (2 * 3600 * 1000)
#define GRPC_GO_TIMEOUT_MS 20000

/* A duration flag as an int channel arg: dflt when 0, capped at INT_MAX. */
static int ms_arg(int64_t ms, int dflt)
{
	return ms <= 0 ? dflt : ms > INT_MAX ? INT_MAX : (int)ms;
}

int api_start(const struct api_config *cfg, struct core *core, struct api_server **out,
	      char *err, size_t errlen)
{
	struct api_server *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		api_listen_close(cfg->bound);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->core = core;
	s->client_cert_auth = cfg->tls.client_cert_auth;
	grpc_init();
	uint64_t recv_max = cfg->max_request_bytes + GRPC_OVERHEAD_BYTES;
	s->recv_max = recv_max > INT_MAX ? INT_MAX : (size_t)recv_max;
	bool keepalive_off = cfg->keepalive_interval_ms <= 0 || cfg->keepalive_timeout_ms <= 0;
	grpc_arg args[] = {
		/* gRPC core's minimal stack: no deadline, message-size or
		 * compression filter on each call; 4% fewer instructions per
		 * put. What they did that a client sees is done in
		 * api_recv_refused (call.c): the receive limit, and refusing a
		 * compressed request as etcd does (it installs no decompressor).
		 * A call past its deadline ends with the client's RST_STREAM,
		 * which gRPC clients send when their deadline passes. */
		{GRPC_ARG_INTEGER, GRPC_ARG_MINIMAL_STACK, {.integer = 1}},
		{GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = -1}},
		{GRPC_ARG_INTEGER, GRPC_ARG_MAX_CONCURRENT_STREAMS,
		 {.integer = cfg->max_concurrent_streams == 0 || cfg->max_concurrent_streams > INT_MAX
				     ? INT_MAX
				     : (int)cfg->max_concurrent_streams}},
		/* ETCD-COMPAT: etcd's gRPC-Go server enforces
		 * --grpc-keepalive-min-time between a client's pings while it
		 * has calls open, and 2 h while it has none (PermitWithoutStream
		 * false); the third early ping in a row is answered with GOAWAY
		 * ENHANCE_YOUR_CALM "too_many_pings" (2 strikes allowed). gRPC
		 * core's ping policy has the same three knobs. */
		{GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
		 {.integer = ms_arg(cfg->keepalive_min_ms, GRPC_GO_MIN_PING_MS)}},
		{GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_MAX_PING_STRIKES, {.integer = 2}},
		{GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, {.integer = 0}},
		/* --grpc-keepalive-interval/-timeout: the server pings a
		 * connection after that long without activity. etcd leaves
		 * gRPC-Go's defaults (2 h, 20 s) in place when either is 0. */
		{GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIME_MS,
		 {.integer = ms_arg(keepalive_off ? 0 : cfg->keepalive_interval_ms, GRPC_GO_PING_MS)}},
		{GRPC_ARG_INTEGER, GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
		 {.integer = ms_arg(keepalive_off ? 0 : cfg->keepalive_timeout_ms, GRPC_GO_TIMEOUT_MS)}},
		/* No BDP probing: each message read would send a ping and arm a
		 * timer on gRPC's timer thread (1.7 of the 5 thread wake-ups of a
		 * lease keep-alive, measured with 1,000 keep-alive streams); a
		 * fixed receive window that holds the largest request
		 * (--max-request-bytes + overhead) instead of the one BDP grows. */
		{GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_BDP_PROBE, {.integer = 0}},
		{GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, {.integer = (int)s->recv_max}},
		/* No channelz service is served: skip its per-call accounting. */
		{GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_CHANNELZ, {.integer = 0}},
		/* etcd owns its port. gRPC core's SO_REUSEPORT would let a second
		 * server on the same port take half of the connections (two test
		 * servers handed the same free port did: TLS clients reached the
		 * plaintext one) instead of failing to listen. */
		{GRPC_ARG_INTEGER, GRPC_ARG_ALLOW_REUSEPORT, {.integer = 0}},
	};
	grpc_channel_args cargs = {sizeof(args) / sizeof(args[0]), args};
	s->server = grpc_server_create(&cargs, NULL);
	api_metrics_set_extensive(cfg->metrics_extensive);
	register_methods(s, api_kv_methods);
	register_methods(s, api_other_methods);
	register_methods(s, api_lease_methods);
	register_methods(s, api_watch_methods);
	register_methods(s, api_lock_methods);
	register_methods(s, api_election_methods);
	register_methods(s, api_auth_methods);
	register_methods(s, api_health_methods);
	grpc_completion_queue_attributes streams = {GRPC_CQ_CURRENT_VERSION, GRPC_CQ_NEXT,
						    GRPC_CQ_NON_POLLING, NULL};
	for (int i = 0; i < N_CQ; i++) {
		s->cqs[i] = i == CQ_STREAMS ? grpc_completion_queue_create(
						      grpc_completion_queue_factory_lookup(&streams),
						      &streams, NULL)
					    : core_polling_cq(core);
		grpc_server_register_completion_queue(s->server, s->cqs[i], NULL);
	}
	s->shutdown_cq = grpc_completion_queue_create_for_pluck(NULL);
	/* The client URLs are bound first (api_bind, or here): if one fails,
	 * gRPC has no listener yet (a never-started server with listeners
	 * cannot be destroyed). */
	s->listen = cfg->bound ? cfg->bound
			       : api_listen_open(cfg->listen_urls, cfg->n_listen_urls, err, errlen);
	if (s->listen != NULL)
		api_listen_require_tls13(s->listen, cfg->tls.tls13_min);
	int rc = s->listen == NULL ? -1 : add_ports(s, cfg, err, errlen);
	if (rc == 0 && api_offload_start() != 0) {
		snprintf(err, errlen, "cannot start worker threads");
		rc = -1;
	}
	if (rc != 0) {
		api_listen_close(s->listen);
		grpc_server_destroy(s->server);
		grpc_completion_queue_destroy(s->cqs[CQ_STREAMS]);
		grpc_completion_queue_destroy(s->shutdown_cq);
		grpc_shutdown();
		free(s);
		return -1;
	}
	grpc_server_start(s->server);
	for (int i = 0; i < N_CQ; i++) {
		arm_all(s, i, api_kv_methods);
		arm_all(s, i, api_other_methods);
		arm_all(s, i, api_lease_methods);
		arm_all(s, i, api_watch_methods);
		arm_all(s, i, api_lock_methods);
		arm_all(s, i, api_election_methods);
		arm_all(s, i, api_auth_methods);
		arm_all(s, i, api_health_methods);
		for (int k = 0; k < 2 && i == CQ_CALLS; k++)
			api_call_arm(s, s->cqs[i], NULL); /* unknown methods */
	}
	pthread_create(&s->streams_thread, NULL, streams_main, s->cqs[CQ_STREAMS]);
	pthread_mutex_init(&s->mmu, NULL);
	pthread_cond_init(&s->mcv, NULL);
	s->monitor_started = pthread_create(&s->monitor, NULL, monitor_main, s) == 0;
	char priorities[1024];
	api_tls_priorities(cfg->tls.tls13_min, cfg->tls.gnutls_ciphers, priorities,
			   sizeof(priorities));
	struct api_http_config hc = {
		.cert_file = cfg->tls.cert_file,
		.key_file = cfg->tls.key_file,
		.trusted_ca_file = cfg->tls.trusted_ca_file,
		.client_cert_auth = cfg->tls.client_cert_auth,
		.crl_file = cfg->tls.crl_file,
		.allowed_hostname = cfg->tls.allowed_hostname,
		.priorities = priorities,
		.max_request_bytes = cfg->max_request_bytes,
		.metrics_urls = cfg->metrics_urls,
		.n_metrics_urls = cfg->n_metrics_urls,
		.cors = cfg->cors,
		.host_whitelist = cfg->host_whitelist,
	};
	s->http = api_http_start(&hc, core, s->server, err, errlen);
	if (s->http == NULL) {
		api_listen_close(s->listen);
		s->listen = NULL;
		/* the server is started: stop it as api_stop does */
		api_stop(s);
		return -1;
	}
	*out = s;
	return 0;
}

struct api_listen *api_bind(const char *const *urls, size_t n, char *err, size_t errlen)
{
	return api_listen_open(urls, n, err, errlen);
}

void api_unbind(struct api_listen *l)
{
	api_listen_close(l);
}

int api_accept(struct api_server *s, char *err, size_t errlen)
{
	if (api_listen_start(s->listen, s->server, s->http) != 0) {
		snprintf(err, errlen, "cannot start accepting client connections");
		return -1;
	}
	return 0;
}

void api_stop(struct api_server *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mmu);
	s->mstop = true;
	pthread_cond_signal(&s->mcv);
	pthread_mutex_unlock(&s->mmu);
	if (s->monitor_started)
		pthread_join(s->monitor, NULL);
	pthread_mutex_destroy(&s->mmu);
	pthread_cond_destroy(&s->mcv);
	static int shutdown_tag;
	grpc_server_shutdown_and_notify(s->server, s->shutdown_cq, &shutdown_tag);
	/* Streams (Watch, KeepAlive, Observe) never end on their own, nor do
	 * Lock/Campaign calls waiting for their turn: end them while their
	 * calls can still be answered. */
	api_stream_shutdown_all();
	core_watch_abort_waits(s->core);
	gpr_timespec grace =
		gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(SHUTDOWN_GRACE_S, GPR_TIMESPAN));
	api_http_drain(s->http, grace);
	/* Like grpc-go's GracefulStop (etcd's), wait for the calls, not for
	 * the connections: gRPC core's notification also waits for every
	 * client to close its connection after the GOAWAY, and one that is
	 * idle and not polled (grpcio's idle channels, one closed while it
	 * was connecting) held the stop for the whole grace. Once our calls
	 * are done (or the grace is over), the rest are cut. */
	api_calls_wait_idle(grace);
	grpc_server_cancel_all_calls(s->server);
	grpc_completion_queue_pluck(s->shutdown_cq, &shutdown_tag, gpr_inf_future(GPR_CLOCK_REALTIME),
				    NULL);
	/* No call is left: stop accepting, end relays and HTTP connections. */
	api_listen_close(s->listen);
	s->listen = NULL;
	api_http_stop(s->http);
	s->http = NULL;
	/* Every call's last completion must be handled (and nothing started
	 * after it) before the CQs are shut down. */
	long left = api_calls_wait_idle(gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
						     gpr_time_from_seconds(SHUTDOWN_GRACE_S, GPR_TIMESPAN)));
	if (left > 0)
		core_log("warn", "%ld calls still open at shutdown", left);
	api_offload_stop();
	/* CQ_CALLS is core's: core_close stops it after the peers. */
	grpc_completion_queue_shutdown(s->cqs[CQ_STREAMS]);
	pthread_join(s->streams_thread, NULL);
	grpc_server_destroy(s->server);
	grpc_completion_queue_destroy(s->cqs[CQ_STREAMS]);
	grpc_completion_queue_shutdown(s->shutdown_cq);
	grpc_completion_queue_destroy(s->shutdown_cq);
	grpc_shutdown();
	free(s);
}

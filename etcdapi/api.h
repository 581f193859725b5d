/*
 * etcdapi/api.h — etcd's v3 gRPC API served with the gRPC C core.
 *
 * One gRPC server, two completion-queue threads (calls, streams). Unary handlers decode,
 * hand the request to core/ and send the reply from the completion callback.
 */
#ifndef METAD_ETCDAPI_API_H
#define METAD_ETCDAPI_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct api_tls {
	const char *cert_file;
	const char *key_file;
	const char *trusted_ca_file; /* NULL: no client certificates checked */
	int client_cert_auth;        /* require a client certificate signed by the CA */
	const char *crl_file;        /* --client-crl-file: revoked client certificates; NULL: none */
	const char *crl_dir;         /* where its hashed copies go for gRPC core (with crl_file) */
	const char *allowed_hostname; /* --client-cert-allowed-hostname, or NULL */
	const char *gnutls_ciphers;  /* --cipher-suites as GnuTLS priority items; NULL: all
				      * (gRPC's side: GRPC_SSL_CIPHER_SUITES, set by the caller) */
	bool tls13_min;              /* --tls-min-version TLS1.3 */
};

struct api_config {
	const char *const *listen_urls; /* http://host:port or https://host:port */
	size_t n_listen_urls;
	struct api_tls tls;
	uint64_t max_request_bytes;     /* etcd: 1.5 MiB */
	uint32_t max_concurrent_streams; /* etcd: unlimited */
	const char *const *metrics_urls; /* --listen-metrics-urls: /metrics and /health only */
	size_t n_metrics_urls;
	/* --grpc-keepalive-min-time: a client pinging more often is sent
	 * GOAWAY "too_many_pings" (0: gRPC-Go's default, 5 min, as etcd);
	 * --grpc-keepalive-interval/-timeout: the server's pings to idle
	 * connections (0: none). */
	int64_t keepalive_min_ms, keepalive_interval_ms, keepalive_timeout_ms;
	/* --cors, --host-whitelist as given (NULL: etcd's "*"; http_access.h) */
	const char *cors, *host_whitelist;
	bool metrics_extensive; /* --metrics extensive: gRPC handling-time histograms */
	struct api_listen *bound; /* api_bind's listeners of listen_urls, or NULL */
};

struct api_server;
struct api_listen;

/* Bind the TCP client URLs ahead of api_start, as etcd binds its client
 * listeners before it opens its backend: a client that dials while the
 * store opens waits in the backlog instead of being refused (and backing
 * off). Hand the result to api_start in api_config.bound, which then owns
 * it; api_unbind if api_start is never reached. NULL on failure. */
struct api_listen *api_bind(const char *const *urls, size_t n, char *errbuf, size_t errlen);
void api_unbind(struct api_listen *l);

/* Bind every listen URL (the TCP ones unless cfg->bound) and get ready to
 * serve: connections wait in the listen backlog until api_accept. On
 * failure writes errbuf (and has closed cfg->bound). */
int api_start(const struct api_config *cfg, struct core *core, struct api_server **out,
	      char *errbuf, size_t errlen);
/* Start serving client connections: once this member is ready (published
 * through the log), as etcd's client listeners wait for ReadyNotify. */
int api_accept(struct api_server *s, char *errbuf, size_t errlen);
/* Stop accepting, let in-flight calls finish (cancel them after a grace
 * period), join the threads and free the server. */
void api_stop(struct api_server *s);

#endif

/*
 * etcdapi/http.h — HTTP/1.1 on the client port (and on --listen-metrics-urls):
 * /health, /livez, /readyz, /version, /metrics and etcd's JSON gateway under
 * /v3/ (and /v3beta/, /v3alpha/), served by libmicrohttpd, one thread per
 * connection (a gateway call blocks its thread until gRPC answers).
 *
 * The gateway is what etcd's grpc-gateway is: a gRPC client of this very
 * server. Each JSON request becomes the gRPC call it maps to, over a private
 * in-process HTTP/2 connection (a socketpair handed to gRPC core from both
 * ends), so it goes through the same handlers, checks and errors as any
 * gRPC client's call.
 */
#ifndef METAD_ETCDAPI_HTTP_H
#define METAD_ETCDAPI_HTTP_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "core/core.h"

struct api_http;

struct api_http_config {
	const char *cert_file, *key_file; /* for https client URLs; NULL: none */
	const char *trusted_ca_file;
	bool client_cert_auth;
	const char *crl_file;       /* revoked client certificates (PEM); NULL: none */
	const char *allowed_hostname; /* --client-cert-allowed-hostname; NULL: none */
	const char *priorities;     /* GnuTLS priority string for HTTPS */
	uint64_t max_request_bytes;
	const char *const *metrics_urls; /* --listen-metrics-urls (http:// only here) */
	size_t n_metrics_urls;
	const char *cors;           /* --cors as given; NULL: "*" (http_access.h) */
	const char *host_whitelist; /* --host-whitelist as given; NULL: "*" */
};

/* Create the HTTP side (daemons, the gateway's channel into server, which
 * must be started). NULL on failure, with err written. */
struct api_http *api_http_start(const struct api_http_config *cfg, struct core *core,
				grpc_server *server, char *err, size_t errlen);
/* Serve an accepted connection (the fd is taken, closed on failure). */
void api_http_add_conn(struct api_http *h, int fd, bool tls, const struct sockaddr *addr,
		       socklen_t addr_len);
/* Stop the daemons (ending streams) and free. NULL ok. */
void api_http_stop(struct api_http *h);
/* Server shutdown begins: end the JSON gateway's calls (new ones are refused)
 * by deadline, so they do not hold the gRPC server's shutdown. NULL ok. */
void api_http_drain(struct api_http *h, gpr_timespec deadline);

#endif

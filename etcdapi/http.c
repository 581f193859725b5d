/*
 * etcdapi/http.c — the HTTP endpoints of the client port, with
 * libmicrohttpd: health probes, version, metrics and the JSON gateway.
 *
 * ETCD-COMPAT (etcd 3.5 etcdhttp): /health answers {"health":"true",
 * "reason":""}, or "false" with 503 and a reason when an alarm is active
 * (?exclude=NOSPACE leaves one type out), when there is no leader, or when a
 * Range of "health" fails (linearizable, or ?serializable=true); a refusal
 * by auth counts as healthy, as in etcd. /livez is "ok" while the process
 * serves; /readyz is "ok" unless CORRUPT is raised or a serializable read
 * fails. Unknown paths are 404 "404 page not found".
 */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alarm.h"
#include "core/core.h"
#include "etcdapi/gateway.h"
#include "etcdapi/http.h"
#include "etcdapi/http_access.h"
#include "etcdapi/metrics.h"

#define CONN_TIMEOUT_S 300

struct api_http {
	struct MHD_Daemon *plain, *tls, *metrics;
	struct core *core;
	struct gw *gw;
	bool client_cert_auth;
	uint64_t max_body;
	char *cert, *key, *ca;
	char *priorities;           /* GnuTLS priority string of the HTTPS daemon */
	gnutls_x509_crl_t *crls;    /* --client-crl-file */
	unsigned n_crls;
	const char *allowed_hostname; /* --client-cert-allowed-hostname */
	struct api_access *access;  /* --host-whitelist, --cors */
};

/* One request: its body, or its open stream. */
struct req {
	char *body;
	size_t len;
	bool too_large;
	struct api_http *h;
	struct gw_stream *stream;
	char *pending; /* formatted stream output not yet handed to MHD */
	size_t plen, poff;
	bool ended;
	struct MHD_Connection *conn;
	const char *allow; /* Access-Control-Allow-Origin of its answer (http_access.h) */
};

static enum MHD_Result respond(struct req *q, unsigned status, const char *type, char *body,
			       size_t len)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, body ? body : (char *)"", MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	api_access_cors_headers(r, q->allow);
	enum MHD_Result rv = MHD_queue_response(q->conn, status, r);
	MHD_destroy_response(r);
	return rv;
}

static enum MHD_Result respond_text(struct req *q, unsigned status, const char *type,
				    const char *text)
{
	char *b = strdup(text);
	return respond(q, status, type, b, b ? strlen(b) : 0);
}

static enum MHD_Result respond_json(struct req *q, unsigned status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return respond(q, status, "application/json", s, s ? strlen(s) : 0);
}

/* ---- probes ---- */

/* A Range of "health" through the gateway, as etcd's checkV3Health; auth
 * refusals mean the server answered. */
static bool range_ok(struct api_http *h, bool serializable, char *why, size_t len)
{
	const struct gw_route *r = gw_route_find("/v3/kv/range");
	const char *body = serializable
				   ? "{\"key\":\"aGVhbHRo\",\"keys_only\":true,\"limit\":\"1\","
				     "\"serializable\":true}"
				   : "{\"key\":\"aGVhbHRo\",\"keys_only\":true,\"limit\":\"1\"}";
	struct gw_result res;
	gw_unary(h->gw, r, body, strlen(body), NULL, &res);
	json_decref(res.resp);
	if (res.code == GRPC_STATUS_OK || strcmp(res.message, "etcdserver: permission denied") == 0 ||
	    strcmp(res.message, "etcdserver: user name is empty") == 0)
		return true;
	snprintf(why, len, "%s", res.message);
	return false;
}

static bool excluded(struct MHD_Connection *conn, const char *name)
{
	/* MHD keeps only one value per key: ?exclude=A&exclude=B is read as
	 * the last one; a comma-separated list works too. */
	const char *ex = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "exclude");
	if (ex == NULL)
		return false;
	size_t n = strlen(name);
	for (const char *p = ex; *p;) {
		size_t l = strcspn(p, ",");
		if (l == n && strncmp(p, name, n) == 0)
			return true;
		p += l + (p[l] == ',');
	}
	return false;
}

static enum MHD_Result health(struct api_http *h, struct req *q)
{
	struct MHD_Connection *conn = q->conn;
	char reason[640] = "";
	struct core_alarm al[32];
	size_t n = core_alarms(h->core, al, 32);
	for (size_t i = 0; i < n && i < 32 && !reason[0]; i++) {
		const char *name = core_alarm_name(al[i].type);
		if (name != NULL && !excluded(conn, name))
			snprintf(reason, sizeof(reason), "ALARM %s", name);
	}
	if (!reason[0] && !core_has_leader(h->core))
		snprintf(reason, sizeof(reason), "RAFT NO LEADER");
	const char *ser = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "serializable");
	char why[512];
	if (!reason[0] && !range_ok(h, ser && strcmp(ser, "true") == 0, why, sizeof(why)))
		snprintf(reason, sizeof(reason), "QGET ERROR:%s", why);
	json_t *j = json_object();
	json_object_set_new(j, "health", json_string(reason[0] ? "false" : "true"));
	json_object_set_new(j, "reason", json_string(reason));
	return respond_json(q, reason[0] ? 503 : 200, j);
}

static enum MHD_Result readyz(struct api_http *h, struct req *q)
{
	struct MHD_Connection *conn = q->conn;
	char out[1024] = "", why[512];
	bool ok = true;
	size_t o = 0;
	bool verbose = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "verbose") != NULL;
	if (!excluded(conn, "data_corruption")) {
		bool bad = core_alarm_active(h->core, 2);
		ok = ok && !bad;
		if (bad || verbose)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "[%c]data_corruption %s\n",
					      bad ? '-' : '+', bad ? "failed: alarm CORRUPT" : "ok");
	}
	if (!excluded(conn, "serializable_read") && o < sizeof(out)) {
		bool good = range_ok(h, true, why, sizeof(why));
		ok = ok && good;
		if (!good || verbose)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "[%c]serializable_read %s%s\n",
					      good ? '+' : '-', good ? "ok" : "failed: ",
					      good ? "" : why);
	}
	if (o < sizeof(out))
		snprintf(out + o, sizeof(out) - o, "%s", ok ? "ok\n" : "readyz check failed\n");
	return respond_text(q, ok ? 200 : 503, "text/plain; charset=utf-8", verbose || !ok ? out
											 : "ok\n");
}

/* ---- gateway streams ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct req *q = cls;
	while (q->poff == q->plen) {
		free(q->pending);
		q->pending = NULL;
		q->plen = q->poff = 0;
		if (q->ended)
			return MHD_CONTENT_READER_END_OF_STREAM;
		struct gw_result res;
		json_t *line = json_object();
		if (gw_stream_next(q->stream, &res)) {
			json_object_set_new(line, "result", res.resp);
		} else {
			q->ended = true;
			if (res.code == GRPC_STATUS_OK) {
				json_decref(line);
				continue;
			}
			/* grpc-gateway v1's stream error object */
			json_t *e = json_object();
			json_object_set_new(e, "grpc_code", json_integer(res.code));
			json_object_set_new(e, "http_code", json_integer(gw_http_status(res.code)));
			json_object_set_new(e, "message", json_string(res.message));
			json_object_set_new(line, "error", e);
		}
		char *s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(line);
		if (s == NULL)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		size_t l = strlen(s);
		char *grown = realloc(s, l + 2);
		if (grown == NULL) {
			free(s);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		q->pending = grown;
		q->pending[l] = '\n';
		q->plen = l + 1;
	}
	size_t n = q->plen - q->poff < max ? q->plen - q->poff : max;
	memcpy(buf, q->pending + q->poff, n);
	q->poff += n;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	(void)cls; /* the request context owns the stream; freed on completion */
}

static enum MHD_Result gateway(struct api_http *h, struct MHD_Connection *conn,
			       const struct gw_route *r, struct req *q)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	struct gw_result res;
	if (r->server_stream) {
		q->stream = gw_stream_open(h->gw, r, q->body, q->len, auth, &res);
		if (q->stream == NULL) {
			char *b = gw_error_body(res.code, res.message);
			return respond(q, (unsigned)gw_http_status(res.code), "application/json", b,
				       b ? strlen(b) : 0);
		}
		struct MHD_Response *resp = MHD_create_response_from_callback(
			MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, q, stream_free);
		if (resp == NULL)
			return MHD_NO;
		MHD_add_response_header(resp, "Content-Type", "application/json");
		api_access_cors_headers(resp, q->allow);
		enum MHD_Result rv = MHD_queue_response(conn, 200, resp);
		MHD_destroy_response(resp);
		return rv;
	}
	gw_unary(h->gw, r, q->body, q->len, auth, &res);
	if (res.code != GRPC_STATUS_OK) {
		char *b = gw_error_body(res.code, res.message);
		return respond(q, (unsigned)gw_http_status(res.code), "application/json", b,
			       b ? strlen(b) : 0);
	}
	return respond_json(q, 200, res.resp);
}

/* ---- dispatch ---- */

static bool cert_ok(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return false;
	gnutls_session_t s = (gnutls_session_t)ci->tls_session;
	unsigned n = 0;
	if (gnutls_certificate_get_peers(s, &n) == NULL || n == 0)
		return false;
	unsigned status = 0;
	return gnutls_certificate_verify_peers2(s, &status) == GNUTLS_E_SUCCESS && status == 0;
}

/* The client's certificate chain (DER, leaf first) of an HTTPS request;
 * NULL with *n 0 when none. */
static const gnutls_datum_t *client_certs(struct MHD_Connection *conn, unsigned *n)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	*n = 0;
	if (ci == NULL || ci->tls_session == NULL)
		return NULL;
	return gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, n);
}

/* Whether the client's certificate is one a --client-crl-file CRL revokes
 * (libmicrohttpd takes no CRL for its handshake: checked per request). */
static bool cert_revoked(struct api_http *h, struct MHD_Connection *conn)
{
	if (h->n_crls == 0)
		return false;
	unsigned n = 0;
	const gnutls_datum_t *peers = client_certs(conn, &n);
	bool revoked = false;
	for (unsigned i = 0; i < n && !revoked; i++) {
		gnutls_x509_crt_t crt;
		if (gnutls_x509_crt_init(&crt) < 0)
			return true; /* cannot tell: refuse */
		if (gnutls_x509_crt_import(crt, &peers[i], GNUTLS_X509_FMT_DER) < 0 ||
		    gnutls_x509_crt_check_revocation(crt, h->crls, h->n_crls) != 0)
			revoked = true;
		gnutls_x509_crt_deinit(crt);
	}
	return revoked;
}

#define MAX_SANS 64

/* With --client-cert-allowed-hostname: whether the client's certificate is
 * not valid for that name (Go's rules, as etcd; checked per request like
 * the CRLs). No certificate: nothing to check, as in etcd. */
static bool cert_name_refused(struct api_http *h, struct MHD_Connection *conn)
{
	if (h->allowed_hostname == NULL)
		return false;
	unsigned n = 0;
	const gnutls_datum_t *peers = client_certs(conn, &n);
	if (peers == NULL || n == 0)
		return false;
	gnutls_x509_crt_t crt;
	if (gnutls_x509_crt_init(&crt) < 0)
		return true; /* cannot tell: refuse */
	char *dns[MAX_SANS], *ips[MAX_SANS];
	size_t n_dns = 0, n_ips = 0;
	bool refused = gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) < 0;
	for (unsigned seq = 0; !refused && n_dns < MAX_SANS && n_ips < MAX_SANS; seq++) {
		char buf[256];
		size_t len = sizeof(buf) - 1;
		int type = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &len, NULL);
		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (type == GNUTLS_SAN_DNSNAME) {
			buf[len] = 0;
			dns[n_dns] = strdup(buf);
			n_dns += dns[n_dns] != NULL;
		} else if (type == GNUTLS_SAN_IPADDRESS && (len == 4 || len == 16)) {
			char text[INET6_ADDRSTRLEN];
			if (inet_ntop(len == 4 ? AF_INET : AF_INET6, buf, text, sizeof(text))) {
				ips[n_ips] = strdup(text);
				n_ips += ips[n_ips] != NULL;
			}
		}
	}
	if (!refused)
		refused = !core_tls_host_in_sans(h->allowed_hostname, dns, n_dns, ips, n_ips);
	for (size_t i = 0; i < n_dns; i++)
		free(dns[i]);
	for (size_t i = 0; i < n_ips; i++)
		free(ips[i]);
	gnutls_x509_crt_deinit(crt);
	return refused;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **ctx)
{
	(void)version;
	struct api_http *h = cls;
	struct req *q = *ctx;
	if (q == NULL) {
		q = calloc(1, sizeof(*q));
		if (q == NULL)
			return MHD_NO;
		q->h = h;
		q->conn = conn;
		*ctx = q;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (!q->too_large && q->len + *upload_size <= h->max_body) {
			char *nb = realloc(q->body, q->len + *upload_size + 1);
			if (nb == NULL)
				return MHD_NO;
			q->body = nb;
			memcpy(q->body + q->len, upload, *upload_size);
			q->len += *upload_size;
			q->body[q->len] = 0;
		} else {
			q->too_large = true;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	const union MHD_ConnectionInfo *di =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
	bool on_tls = di && di->daemon == h->tls && h->tls != NULL;
	bool metrics_only = di && di->daemon == h->metrics && h->metrics != NULL;
	if (on_tls && (cert_revoked(h, conn) || cert_name_refused(h, conn)))
		return MHD_NO; /* closes the connection, as a refused handshake would */
	if (on_tls && h->client_cert_auth && !cert_ok(conn))
		return respond_text(q, 403, "text/plain; charset=utf-8",
				    "a client certificate signed by the trusted CA is required\n");
	enum MHD_Result rv;
	/* etcd's access controller: the client port only, not metrics URLs */
	if (!metrics_only && api_access_answer(h->access, conn, method, on_tls, &q->allow, &rv))
		return rv;
	bool get = strcmp(method, "GET") == 0;
	if (strcmp(url, "/metrics") == 0 || strcmp(url, "/health") == 0 ||
	    strcmp(url, "/livez") == 0 || strcmp(url, "/readyz") == 0 ||
	    strcmp(url, "/version") == 0) {
		if (!get)
			return respond_text(q, 405, "text/plain; charset=utf-8",
					    "Method Not Allowed\n");
		if (strcmp(url, "/metrics") == 0) {
			size_t len = 0;
			char *text = api_metrics_render(h->core, &len);
			return respond(q, text ? 200 : 500, "text/plain; version=0.0.4", text, len);
		}
		if (strcmp(url, "/health") == 0)
			return health(h, q);
		if (metrics_only)
			return respond_text(q, 404, "text/plain; charset=utf-8",
					    "404 page not found\n");
		if (strcmp(url, "/livez") == 0)
			return respond_text(q, 200, "text/plain; charset=utf-8", "ok\n");
		if (strcmp(url, "/readyz") == 0)
			return readyz(h, q);
		json_t *j = json_object();
		json_object_set_new(j, "etcdserver", json_string(CORE_ETCD_VERSION));
		json_object_set_new(j, "etcdcluster", json_string(CORE_CLUSTER_VERSION));
		return respond_json(q, 200, j);
	}
	const struct gw_route *r = metrics_only ? NULL : gw_route_find(url);
	if (r == NULL)
		return respond_text(q, 404, "text/plain; charset=utf-8", "404 page not found\n");
	if (strcmp(method, "POST") != 0)
		return respond_text(q, 405, "text/plain; charset=utf-8", "Method Not Allowed\n");
	if (q->too_large) {
		char *b = gw_error_body(GRPC_STATUS_INVALID_ARGUMENT,
					"etcdserver: request is too large");
		return respond(q, 400, "application/json", b, b ? strlen(b) : 0);
	}
	return gateway(h, conn, r, q);
}

static void completed(void *cls, struct MHD_Connection *conn, void **ctx,
		      enum MHD_RequestTerminationCode why)
{
	(void)cls;
	(void)conn;
	(void)why;
	struct req *q = *ctx;
	if (q == NULL)
		return;
	gw_stream_close(q->stream);
	free(q->pending);
	free(q->body);
	free(q);
	*ctx = NULL;
}

static struct MHD_Daemon *daemon_start(struct api_http *h, bool tls, const struct sockaddr *bind)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (bind == NULL)
		flags |= MHD_USE_NO_LISTEN_SOCKET;
	if (bind != NULL && bind->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (tls)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem opts[10];
	int n = 0;
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, CONN_TIMEOUT_S, NULL};
	if (bind != NULL)
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)bind};
	if (tls) {
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->key};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert};
		if (h->ca != NULL)
			opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, h->ca};
		/* TLS 1.2 at least, --tls-min-version, --cipher-suites (tls_opts.c) */
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, h->priorities};
	}
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	return MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_END);
}

static int load_crls(struct api_http *h, const char *path, char *err, size_t errlen)
{
	gnutls_datum_t data = {NULL, 0};
	int rv = gnutls_load_file(path, &data);
	if (rv >= 0)
		rv = gnutls_x509_crl_list_import2(&h->crls, &h->n_crls, &data, GNUTLS_X509_FMT_PEM, 0);
	gnutls_free(data.data);
	if (rv < 0 || h->n_crls == 0) {
		snprintf(err, errlen, "--client-crl-file %s: %s", path,
			 rv < 0 ? gnutls_strerror(rv) : "no CRL in it");
		return -1;
	}
	return 0;
}

struct api_http *api_http_start(const struct api_http_config *cfg, struct core *core,
				grpc_server *server, char *err, size_t errlen)
{
	struct api_http *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->core = core;
	h->client_cert_auth = cfg->client_cert_auth;
	h->allowed_hostname = cfg->allowed_hostname;
	h->access = api_access_new(cfg->cors, cfg->host_whitelist);
	if (h->access == NULL) {
		snprintf(err, errlen, "--cors or --host-whitelist: cannot be set up");
		goto fail;
	}
	h->priorities = strdup(cfg->priorities ? cfg->priorities : "NORMAL");
	if (h->priorities == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (cfg->crl_file != NULL && load_crls(h, cfg->crl_file, err, errlen) != 0)
		goto fail;
	/* etcd's gateway takes what gRPC would: the request limit + 512 KiB */
	h->max_body = (cfg->max_request_bytes ? cfg->max_request_bytes : 1572864) * 2 + 512 * 1024;
	h->gw = gw_open(server);
	if (h->gw == NULL) {
		snprintf(err, errlen, "gateway: cannot open its connection");
		goto fail;
	}
	h->plain = daemon_start(h, false, NULL);
	if (h->plain == NULL) {
		snprintf(err, errlen, "cannot start the HTTP server");
		goto fail;
	}
	if (cfg->cert_file != NULL && cfg->key_file != NULL) {
		char why[256] = "certificate or key";
		h->cert = core_read_pem(cfg->cert_file, "--cert-file", why, sizeof(why));
		h->key = core_read_pem(cfg->key_file, "--key-file", why, sizeof(why));
		h->ca = cfg->trusted_ca_file
				? core_read_pem(cfg->trusted_ca_file, "--trusted-ca-file", why, sizeof(why))
				: NULL;
		if (h->cert == NULL || h->key == NULL ||
		    (h->tls = daemon_start(h, true, NULL)) == NULL) {
			snprintf(err, errlen, "cannot start the HTTPS server (%s)", why);
			goto fail;
		}
	}
	for (size_t i = 0; i < cfg->n_metrics_urls && h->metrics == NULL; i++) {
		/* http://host:port only; the first one */
		const char *u = cfg->metrics_urls[i];
		if (strncmp(u, "http://", 7) != 0) {
			snprintf(err, errlen, "--listen-metrics-urls: only http:// is served (%s)", u);
			goto fail;
		}
		char host[256];
		int port = 0;
		if (sscanf(u + 7, "%255[^:]:%d", host, &port) != 2 || port <= 0 || port > 65535) {
			snprintf(err, errlen, "invalid --listen-metrics-urls %s", u);
			goto fail;
		}
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		if (strcmp(host, "localhost") == 0)
			snprintf(host, sizeof(host), "127.0.0.1");
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
			snprintf(err, errlen, "invalid --listen-metrics-urls host %s", host);
			goto fail;
		}
		h->metrics = daemon_start(h, false, (struct sockaddr *)&sa);
		if (h->metrics == NULL) {
			snprintf(err, errlen, "cannot listen on %s", u);
			goto fail;
		}
	}
	return h;
fail:
	api_http_stop(h);
	return NULL;
}

void api_http_add_conn(struct api_http *h, int fd, bool tls, const struct sockaddr *addr,
		       socklen_t addr_len)
{
	struct MHD_Daemon *d = tls ? h->tls : h->plain;
	if (d == NULL)
		close(fd);
	else
		MHD_add_connection(d, fd, addr, addr_len); /* on failure MHD closes fd */
}

void api_http_drain(struct api_http *h, gpr_timespec deadline)
{
	if (h != NULL)
		gw_drain(h->gw, deadline);
}

void api_http_stop(struct api_http *h)
{
	if (h == NULL)
		return;
	if (h->metrics)
		MHD_stop_daemon(h->metrics);
	if (h->tls)
		MHD_stop_daemon(h->tls);
	if (h->plain)
		MHD_stop_daemon(h->plain);
	gw_close(h->gw);
	api_access_free(h->access);
	free(h->cert);
	free(h->key);
	free(h->ca);
	free(h->priorities);
	for (unsigned i = 0; i < h->n_crls; i++)
		gnutls_x509_crl_deinit(h->crls[i]);
	gnutls_free(h->crls);
	free(h);
}

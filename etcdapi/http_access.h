/*
 * etcdapi/http_access.h — etcd's access controller in front of the HTTP
 * endpoints of the client port: --host-whitelist and --cors.
 *
 * ETCD-COMPAT (etcd 3.4/3.5 embed/serve.go accessController,
 * etcdserver/server_access_control.go, pkg/flags unique_urls.go):
 * - On plain HTTP, a request whose Host (its name: the port is dropped as
 *   Go's net.SplitHostPort drops it; case and brackets as sent) is not in
 *   --host-whitelist gets 421 with etcd's text; "*" (the default) lets every
 *   Host in. HTTPS requests are never checked. gRPC never comes here.
 * - CORS: with --cors "*" (the default) every response carries
 *   Access-Control-Allow-Origin: * and etcd's -Methods and -Headers; with a
 *   list, only a request whose Origin is in it (exactly) gets them, with
 *   its own origin. An OPTIONS request, to any path, is answered 200 with
 *   no body once the Host check passed.
 * - --listen-metrics-urls is served without any of this, as in etcd.
 */
#ifndef METAD_ETCDAPI_HTTP_ACCESS_H
#define METAD_ETCDAPI_HTTP_ACCESS_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

struct api_access;

/*
 * Check a --cors value as etcd's flag does: "*", or comma-separated URLs
 * (each trimmed) with scheme http, https, unix or unixs, a host:port and no
 * path. Returns 0, or -1 with etcd's reason in err ("URL scheme must be
 * http, https, unix, or unixs: foo").
 */
int api_access_cors_check(const char *cors, char *err, size_t errlen);

/* From --cors and --host-whitelist as given (NULL: etcd's "*"). NULL when
 * out of memory or cors fails api_access_cors_check. */
struct api_access *api_access_new(const char *cors, const char *hosts);
/* NULL ok. */
void api_access_free(struct api_access *a);

/*
 * Run the controller on a request of the client port (tls: it came over
 * HTTPS). Returns false to go on serving it, with *allow set to the
 * Access-Control-Allow-Origin value its response must carry (NULL: no CORS
 * headers; borrowed from a or from the request, valid until it completes).
 * Returns true when it answered itself (421 or OPTIONS), with MHD's result
 * in *rv.
 */
bool api_access_answer(const struct api_access *a, struct MHD_Connection *conn,
		       const char *method, bool tls, const char **allow, enum MHD_Result *rv);

/* Add etcd's three CORS headers for allow (NULL: nothing). */
void api_access_cors_headers(struct MHD_Response *r, const char *allow);

#endif

/*
 * etcdapi/listen.h — the client port, shared by gRPC and HTTP as in etcd.
 *
 * metad binds each client URL itself and looks at the first bytes of every
 * accepted connection without consuming them (MSG_PEEK):
 *   - plain TCP: the HTTP/2 preface ("PRI * HTTP/2.0") is gRPC, handed to
 *     gRPC core by file descriptor (grpc_server_add_channel_from_fd), so a
 *     gRPC connection costs nothing more once accepted; anything else is
 *     HTTP/1.x, handed to libmicrohttpd (MHD_add_connection);
 *   - TLS: the ClientHello's ALPN list decides. A client offering
 *     "http/1.1" (curl, browsers, Prometheus, Go's net/http) or no ALPN at
 *     all is HTTP, and libmicrohttpd does the handshake; one offering only
 *     "h2" (and "grpc-exp": every gRPC client) is gRPC. gRPC core takes
 *     TLS connections only on its own listeners, so these are relayed to a
 *     private gRPC TLS listener (an abstract unix socket named after the
 *     process) that does the handshake, with the same certificates and
 *     client-certificate checks as before.
 * A connection that sends nothing decidable within 10 s is closed.
 */
#ifndef METAD_ETCDAPI_LISTEN_H
#define METAD_ETCDAPI_LISTEN_H

#include <stdbool.h>

#include <grpc/grpc.h>

struct api_listen;
struct api_http;

/* Bind every TCP client URL of urls ("http://host:port", "https://...");
 * unix:// URLs are not handled here (the caller gives them to gRPC core).
 * On failure writes err and returns NULL. */
struct api_listen *api_listen_open(const char *const *urls, size_t n, char *err, size_t errlen);
/* With an https URL among them: the address of the private gRPC TLS port
 * the caller must add to its server before api_listen_start; else NULL. */
const char *api_listen_tls_addr(const struct api_listen *l);
/* --tls-min-version TLS1.3: close TLS connections whose ClientHello does
 * not offer TLS 1.3 (before api_listen_start). */
void api_listen_require_tls13(struct api_listen *l, bool on);
/* Start accepting (after grpc_server_start). */
int api_listen_start(struct api_listen *l, grpc_server *server, struct api_http *http);
/* Stop accepting, close the listeners and relays still running. NULL ok. */
void api_listen_close(struct api_listen *l);

/* Whether url is a TCP URL this module serves (http:// or https://). */
int api_listen_is_tcp(const char *url);

#endif

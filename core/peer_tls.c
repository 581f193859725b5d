/*
 * core/peer_tls.c — the peer transport's TLS: certificates, credentials for
 * both sides, and etcd's checks on a peer's certificate (--peer-auto-tls,
 * --peer-crl-file, --peer-cert-allowed-cn/-hostname, the client SAN check).
 *
 * Without those options the SSL credentials of gRPC core are used, as
 * before; with them, gRPC core's TLS credentials, which take a CRL
 * directory, an unverified server certificate and a verifier of our own.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>

#include "core/core.h"
#include "core/peer_internal.h"

int peer_load_tls(struct peer_transport *t, const struct peer_tls *tls, char *err, size_t errlen)
{
	if ((tls->cert_file == NULL) != (tls->key_file == NULL)) {
		snprintf(err, errlen, "--peer-cert-file and --peer-key-file go together");
		return -1;
	}
	t->tls = *tls;
	if (tls->cert_file) {
		t->cert_pem = core_read_pem(tls->cert_file, "--peer-cert-file", err, errlen);
		if (t->cert_pem == NULL)
			return -1;
		t->key_pem = core_read_pem(tls->key_file, "--peer-key-file", err, errlen);
		if (t->key_pem == NULL)
			return -1;
	}
	/* A self-signed certificate (--peer-auto-tls) replaces etcd's whole
	 * peer TLS setup: no CA, no client certificates asked for. */
	if (tls->ca_file && !tls->self_signed) {
		t->ca_pem = core_read_pem(tls->ca_file, "--peer-trusted-ca-file", err, errlen);
		if (t->ca_pem == NULL)
			return -1;
	}
	if (tls->client_cert_auth && !tls->self_signed && t->ca_pem == NULL) {
		snprintf(err, errlen, "--peer-client-cert-auth needs --peer-trusted-ca-file");
		return -1;
	}
	t->client_cert_auth = tls->client_cert_auth && !tls->self_signed;
	return 0;
}

static bool names_checked(const struct peer_transport *t)
{
	return t->tls.allowed_cn != NULL || t->tls.allowed_hostname != NULL;
}

/* gRPC core's TLS options with our certificate and CA (shared by both sides). */
static grpc_tls_credentials_options *tls_options(const struct peer_transport *t)
{
	grpc_tls_identity_pairs *pairs = NULL;
	if (t->cert_pem != NULL) {
		pairs = grpc_tls_identity_pairs_create();
		grpc_tls_identity_pairs_add_pair(pairs, t->key_pem, t->cert_pem);
	}
	grpc_tls_certificate_provider *p =
		grpc_tls_certificate_provider_static_data_create(t->ca_pem, pairs);
	grpc_tls_credentials_options *o = grpc_tls_credentials_options_create();
	grpc_tls_credentials_options_set_certificate_provider(o, p);
	grpc_tls_certificate_provider_release(p);
	if (t->ca_pem != NULL)
		grpc_tls_credentials_options_watch_root_certs(o);
	if (t->cert_pem != NULL)
		grpc_tls_credentials_options_watch_identity_key_cert_pairs(o);
	return o;
}

grpc_channel_credentials *peer_channel_creds(struct peer_transport *t, bool tls)
{
	if (!tls)
		return grpc_insecure_credentials_create();
	/* Our peer certificate doubles as the client certificate (etcd does the
	 * same), so a receiver with --peer-client-cert-auth accepts us. */
	grpc_ssl_pem_key_cert_pair pair = {t->key_pem, t->cert_pem};
	if (!t->tls.self_signed && !names_checked(t))
		return grpc_ssl_credentials_create(t->ca_pem, t->cert_pem ? &pair : NULL, NULL, NULL);
	grpc_tls_credentials_options *o = tls_options(t);
	grpc_tls_certificate_verifier *v;
	if (t->tls.self_signed) {
		/* etcd dials a peer with a self-signed certificate without
		 * verifying the peer's (InsecureSkipVerify). */
		grpc_tls_credentials_options_set_verify_server_cert(o, 0);
		grpc_tls_credentials_options_set_check_call_host(o, 0);
		v = grpc_tls_certificate_verifier_no_op_create();
	} else {
		v = core_tls_names_verifier(t->tls.allowed_cn, t->tls.allowed_hostname);
	}
	grpc_tls_credentials_options_set_certificate_verifier(o, v);
	grpc_tls_certificate_verifier_release(v);
	return grpc_tls_credentials_create(o); /* takes o */
}

grpc_server_credentials *peer_server_creds(struct peer_transport *t)
{
	grpc_ssl_client_certificate_request_type req = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
	if (t->client_cert_auth)
		req = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
	else if (t->ca_pem)
		req = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
	bool names = names_checked(t) && req != GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
	if (t->tls.crl_dir == NULL && !names) {
		grpc_ssl_pem_key_cert_pair pair = {t->key_pem, t->cert_pem};
		return grpc_ssl_server_credentials_create_ex(t->ca_pem, &pair, 1, req, NULL);
	}
	grpc_tls_credentials_options *o = tls_options(t);
	grpc_tls_credentials_options_set_cert_request_type(o, req);
	if (t->tls.crl_dir != NULL)
		grpc_tls_credentials_options_set_crl_directory(o, t->tls.crl_dir);
	/* Only certificates asked for are checked: etcd's Go TLS never sees
	 * one it does not request. */
	if (names) {
		grpc_tls_certificate_verifier *v =
			core_tls_names_verifier(t->tls.allowed_cn, t->tls.allowed_hostname);
		grpc_tls_credentials_options_set_certificate_verifier(o, v);
		grpc_tls_certificate_verifier_release(v);
	}
	return grpc_tls_server_credentials_create(o); /* takes o */
}

/* ---- etcd's SAN check of a peer's client certificate ---- */

/* Whether a reverse lookup of ip gives a name among the certificate's DNS
 * SANs (etcd: a name equal to one, or ending in a wildcard's suffix). */
static bool reverse_name_in(const char *ip, char **dns, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		len = sizeof(*v6);
	} else {
		return false;
	}
	char host[NI_MAXHOST];
	if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), NULL, 0, NI_NAMEREQD) != 0)
		return false;
	size_t hl = strlen(host);
	if (hl > 0 && host[hl - 1] == '.')
		host[--hl] = 0;
	for (size_t i = 0; i < n; i++) {
		const char *d = dns[i];
		if (strncmp(d, "*.", 2) == 0) {
			size_t sl = strlen(d + 1);
			if (hl >= sl && strcmp(host + hl - sl, d + 1) == 0)
				return true;
		} else if (strcmp(host, d) == 0) {
			return true;
		}
	}
	return false;
}

/* "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000" -> the address. */
static bool peer_ip(grpc_call *call, char *ip, size_t len)
{
	char *peer = grpc_call_get_peer(call);
	bool ok = false;
	if (peer != NULL && strncmp(peer, "ipv4:", 5) == 0) {
		const char *a = peer + 5;
		size_t n = strcspn(a, ":");
		ok = n < len;
		if (ok)
			snprintf(ip, len, "%.*s", (int)n, a);
	} else if (peer != NULL && strncmp(peer, "ipv6:[", 6) == 0) {
		const char *a = peer + 6;
		size_t n = strcspn(a, "]%");
		ok = n < len;
		if (ok)
			snprintf(ip, len, "%.*s", (int)n, a);
	}
	gpr_free(peer);
	return ok;
}

#define MAX_SANS 64

/* Logged as etcd logs a refused handshake, with Go's error text. */
static void san_refused(const char *ip, char **dns, size_t n_dns, char **ips, size_t n_ips)
{
	char why[1024];
	size_t off;
	char **list = n_dns > 0 ? dns : ips;
	size_t n = n_dns > 0 ? n_dns : n_ips;
	if (n_dns > 0)
		off = (size_t)snprintf(why, sizeof(why), "tls: \"%s\" does not match any of DNSNames [", ip);
	else
		off = (size_t)snprintf(why, sizeof(why), "x509: certificate is valid for ");
	for (size_t i = 0; i < n && off < sizeof(why); i++)
		off += (size_t)snprintf(why + off, sizeof(why) - off,
					n_dns > 0 ? "%s\"%s\"" : "%s%s",
					i == 0 ? "" : n_dns > 0 ? " " : ", ", list[i]);
	if (off < sizeof(why))
		snprintf(why + off, sizeof(why) - off, n_dns > 0 ? "]" : ", not %s", ip);
	core_log_kv("warn", "rejected connection", "{s:s,s:s}", "remote-addr", ip, "error", why);
}

/* 1: allowed, 0: refused (logged), -1: only a reverse lookup can tell and
 * may_wait is false. The lookup (a certificate with DNS SANs and no IP SAN
 * matching) can wait on DNS for seconds, as etcd's per-connection check. */
static int san_verdict(const struct peer_transport *t, grpc_call *call, bool may_wait)
{
	if (t->tls.skip_client_san || t->cert_pem == NULL)
		return 1;
	grpc_auth_context *ctx = grpc_call_auth_context(call);
	if (ctx == NULL)
		return 1; /* plaintext */
	/* gRPC lists a certificate's DNS and IP SANs under one property; an
	 * entry that parses as an address is an IP SAN. */
	char *dns[MAX_SANS], *ips[MAX_SANS];
	size_t n_dns = 0, n_ips = 0;
	grpc_auth_property_iterator it =
		grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_SAN_PROPERTY_NAME);
	for (const grpc_auth_property *p; (p = grpc_auth_property_iterator_next(&it)) != NULL;) {
		char *v = strndup(p->value, p->value_length);
		if (v == NULL)
			continue;
		bool ip = core_tls_is_ip(v);
		if (ip && n_ips < MAX_SANS)
			ips[n_ips++] = v;
		else if (!ip && n_dns < MAX_SANS)
			dns[n_dns++] = v;
		else
			free(v);
	}
	grpc_auth_context_release(ctx);
	int v = 1;
	char ip[INET6_ADDRSTRLEN + 1];
	if ((n_ips > 0 || n_dns > 0) && peer_ip(call, ip, sizeof(ip))) {
		/* etcd: the remote address is one of the certificate's IP SANs,
		 * or its reverse lookup is one of the DNS SANs. */
		if (core_tls_host_in_sans(ip, dns, 0, ips, n_ips))
			v = 1;
		else if (n_dns > 0 && !may_wait)
			v = -1;
		else
			v = n_dns > 0 && reverse_name_in(ip, dns, n_dns);
		if (v == 0)
			san_refused(ip, dns, n_dns, ips, n_ips);
	}
	for (size_t i = 0; i < n_dns; i++)
		free(dns[i]);
	for (size_t i = 0; i < n_ips; i++)
		free(ips[i]);
	return v;
}

bool peer_call_san_ok(const struct peer_transport *t, grpc_call *call)
{
	return san_verdict(t, call, true) == 1;
}

struct san_job {
	const struct peer_transport *t;
	grpc_call *call;
	bool *ok;
	struct core_tag *tag;
};

static void *san_main(void *arg)
{
	struct san_job *j = arg;
	pthread_setname_np(pthread_self(), "metad-peer-san");
	*j->ok = san_verdict(j->t, j->call, true) == 1;
	/* An empty batch completes at once on the call's queue: the owner
	 * goes on there, on its own thread. */
	if (grpc_call_start_batch(j->call, NULL, 0, j->tag, NULL) != GRPC_CALL_OK)
		core_log("error", "peer SAN check: start_batch failed");
	free(j);
	return NULL;
}

int peer_call_san_ok_async(const struct peer_transport *t, grpc_call *call, bool *ok,
			   struct core_tag *tag)
{
	int v = san_verdict(t, call, false);
	if (v >= 0)
		return v;
	struct san_job *j = malloc(sizeof(*j));
	pthread_attr_t attr;
	bool spawned = false;
	if (j != NULL && pthread_attr_init(&attr) == 0) {
		*j = (struct san_job){t, call, ok, tag};
		pthread_t th;
		spawned = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
			  pthread_create(&th, &attr, san_main, j) == 0;
		pthread_attr_destroy(&attr);
	}
	if (spawned)
		return -1;
	free(j);
	return san_verdict(t, call, true); /* no thread: wait here after all */
}

/*
 * core/tls_names.c — etcd's checks of a certificate's names, as Go's x509
 * package makes them: --peer-cert-allowed-cn, --peer-cert-allowed-hostname,
 * --client-cert-allowed-hostname, and the SAN check of a peer's client
 * certificate (peer_tls.c).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>

#include "core/core.h"

/* What etcd's Go TLS answers when the allowed CN or hostname does not match. */
#define NAME_REFUSED "client certificate authentication failed"

/* ---- names: Go's x509 VerifyHostname, which etcd calls ---- */

/* One DNS name of a certificate against a host: case-insensitive, and a
 * leading "*." matches exactly one label. */
static bool dns_match(const char *pattern, const char *host)
{
	size_t pl = strlen(pattern), hl = strlen(host);
	if (hl > 0 && host[hl - 1] == '.')
		hl--; /* a fully qualified host */
	if (pl >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = memchr(host, '.', hl);
		if (dot == NULL || dot == host)
			return false;
		size_t rest = hl - (size_t)(dot - host);
		return rest == pl - 1 && strncasecmp(dot, pattern + 1, rest) == 0;
	}
	return pl == hl && strncasecmp(pattern, host, hl) == 0;
}

/* Two textual IP addresses, compared as addresses (so "::1" is "0::1"). */
static bool ip_equal(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	if (inet_pton(AF_INET, a, x) == 1)
		return inet_pton(AF_INET, b, y) == 1 && memcmp(x, y, 4) == 0;
	if (inet_pton(AF_INET6, a, x) == 1)
		return inet_pton(AF_INET6, b, y) == 1 && memcmp(x, y, 16) == 0;
	return false;
}

bool core_tls_is_ip(const char *s)
{
	unsigned char b[16];
	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

bool core_tls_host_in_sans(const char *host, char **dns, size_t n_dns, char **ips, size_t n_ips)
{
	if (core_tls_is_ip(host)) {
		for (size_t i = 0; i < n_ips; i++)
			if (ip_equal(ips[i], host))
				return true;
		return false;
	}
	for (size_t i = 0; i < n_dns; i++)
		if (dns_match(dns[i], host))
			return true;
	return false;
}

/* ---- the verifier ---- */

struct names_check {
	grpc_tls_certificate_verifier_external ext;
	grpc_tls_certificate_verifier *host_name; /* gRPC's own, for the client side */
	const char *allowed_cn; /* one or the other (start-up refuses both) */
	const char *allowed_hostname;
};

static int names_verify(void *user_data, grpc_tls_custom_verification_check_request *req,
			grpc_tls_on_custom_verification_check_done_cb cb, void *cb_arg,
			grpc_status_code *status, char **details)
{
	struct names_check *c = user_data;
	/* Dialing, the server's name is checked first, as without a verifier
	 * (gRPC's host name check always answers at once). */
	if (req->target_name != NULL &&
	    grpc_tls_certificate_verifier_verify(c->host_name, req, cb, cb_arg, status, details) &&
	    *status != GRPC_STATUS_OK)
		return 1;
	if (req->target_name != NULL && *details != NULL) {
		gpr_free(*details);
		*details = NULL;
	}
	const char *cn = req->peer_info.common_name;
	bool ok;
	if (c->allowed_cn != NULL)
		ok = cn != NULL && strcmp(cn, c->allowed_cn) == 0;
	else
		ok = core_tls_host_in_sans(c->allowed_hostname, req->peer_info.san_names.dns_names,
					   req->peer_info.san_names.dns_names_size,
					   req->peer_info.san_names.ip_names,
					   req->peer_info.san_names.ip_names_size);
	*status = ok ? GRPC_STATUS_OK : GRPC_STATUS_UNAUTHENTICATED;
	*details = ok ? NULL : gpr_strdup(NAME_REFUSED);
	if (!ok)
		core_log_kv("warn", "rejected connection", "{s:s,s:s,s:s}", "common-name",
			    cn ? cn : "", "allowed", c->allowed_cn ? c->allowed_cn : c->allowed_hostname,
			    "error", NAME_REFUSED);
	return 1; /* answered at once */
}

static void names_cancel(void *user_data, grpc_tls_custom_verification_check_request *req)
{
	(void)user_data;
	(void)req;
}

static void names_destruct(void *user_data)
{
	struct names_check *c = user_data;
	grpc_tls_certificate_verifier_release(c->host_name);
	free(c);
}

grpc_tls_certificate_verifier *core_tls_names_verifier(const char *cn, const char *hostname)
{
	struct names_check *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->ext.user_data = c;
	c->ext.verify = names_verify;
	c->ext.cancel = names_cancel;
	c->ext.destruct = names_destruct;
	c->host_name = grpc_tls_certificate_verifier_host_name_create();
	c->allowed_cn = cn;
	c->allowed_hostname = hostname;
	return grpc_tls_certificate_verifier_external_create(&c->ext);
}

/*
 * etcdapi/tls_opts.h — etcd's TLS options for the client port, in the terms
 * of the two TLS stacks behind it: OpenSSL (inside gRPC core) for gRPC and
 * GnuTLS (inside libmicrohttpd) for HTTPS.
 */
#ifndef METAD_ETCDAPI_TLS_OPTS_H
#define METAD_ETCDAPI_TLS_OPTS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * --cipher-suites: etcd's (Go's) comma-separated IANA names, TLS 1.2 suites
 * ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", ...; Go's CHACHA20 names without
 * "_SHA256" too). Writes OpenSSL's cipher list (for GRPC_SSL_CIPHER_SUITES)
 * and the GnuTLS priority items that allow the same suites' key exchanges,
 * ciphers and MACs. 0, or -1 with err ("unexpected TLS cipher suite ...").
 */
int api_tls_ciphers(const char *names, char *openssl, size_t olen, char *gnutls, size_t glen,
		    char *err, size_t errlen);

/*
 * --client-crl-file (or --peer-crl-file: flag names it in errors): the CRLs
 * of a PEM file, each written into dir (created if missing) under OpenSSL's
 * hashed name (<issuer hash>.r<n>), the form gRPC core's CRL directory
 * takes. 0, or -1 with err.
 */
int api_tls_crl_dir(const char *flag, const char *crl_file, const char *dir, char *err,
		    size_t errlen);

/* The GnuTLS priority string for HTTPS: TLS 1.2 at least (1.3 with
 * tls13_min), restricted to ciphers' items when not "". Into out. */
void api_tls_priorities(bool tls13_min, const char *ciphers, char *out, size_t len);

#endif

/*
 * server/autotls.h — etcd's --auto-tls: a self-signed certificate and key
 * made with OpenSSL under the data dir, for the hosts of the client URLs.
 */
#ifndef METAD_SERVER_AUTOTLS_H
#define METAD_SERVER_AUTOTLS_H

#include <stddef.h>

/* Under dir (created), cert.pem and key.pem: reused when both exist (as
 * etcd does), else made: ECDSA P-256, valid `years` years, organization
 * "etcd", subject alternative names for each URL's host (an IP address or
 * a DNS name). cert and key get the paths (len bytes each). 0, or -1 with
 * err written. */
int autotls_make(const char *dir, const char *const *urls, size_t n, int years, char *cert,
		 char *key, size_t len, char *err, size_t errlen);

#endif

/*
 * server/main.c — process wiring: flags, start order, signals, stop order.
 *
 * Start: storage and write path (core), then the client API. Stop on SIGINT
 * or SIGTERM in reverse: the API stops accepting and lets in-flight calls
 * finish, then core drains its queue and closes WiredTiger cleanly.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controllers/controllers.h"
#include "core/core.h"
#include "etcdapi/absl_quiet.h"
#include "etcdapi/api.h"
#include "etcdapi/tls_opts.h"
#include "server/autotls.h"
#include "server/import.h"
#include "server/flags.h"

#define METAD_VERSION "0.1.0"

/*
 * jemalloc's options (read at its start-up; unused without jemalloc). Freed
 * pages go back to the OS after 1 s instead of 10 s: peak RSS loading 1M
 * keys drops from ~258 to ~235 MiB at the same put rate (0 s cost 30%).
 */
const char *malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";

/*
 * LeakSanitizer's built-in suppressions (read only by sanitizer builds): the
 * c-ares in Debian keeps ~10 bytes per resolved host name (a peer URL such as
 * http://localhost:2380) that nothing frees; the leak is the library's.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcares.so\n";
}

/* One JSON line per milestone, in etcd's words (harnesses wait for them). */
static void log_info(const char *msg, const char *key, const char *val)
{
	char ts[64];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	if (key != NULL)
		fprintf(stderr, "{\"level\":\"info\",\"ts\":\"%s.%03ldZ\",\"msg\":\"%s\",\"%s\":\"%s\"}\n",
			ts, now.tv_nsec / 1000000, msg, key, val);
	else
		fprintf(stderr, "{\"level\":\"info\",\"ts\":\"%s.%03ldZ\",\"msg\":\"%s\"}\n", ts,
			now.tv_nsec / 1000000, msg);
	fflush(stderr);
}

int main(int argc, char **argv)
{
	struct flags f;
	if (flags_parse(&f, argc, argv) != 0) {
		flags_free(&f);
		return 2;
	}
	if (f.help) {
		flags_usage();
		flags_free(&f);
		return 0;
	}
	if (f.version) {
		printf("metad Version: %s\netcd API Version: %s\n", METAD_VERSION, CORE_ETCD_VERSION);
		flags_free(&f);
		return 0;
	}

	/* Signals are taken by sigwait below, never by the worker threads. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	log_info("starting metad", "version", METAD_VERSION);
	/* Before the first grpc_init (the peer transport's, in core_open). */
	absl_deadlock_detection_off();
	/* --cipher-suites: gRPC core's TLS (client port and peers, as etcd's
	 * flag covers both) reads its list from the environment. */
	static char openssl_ciphers[4096], gnutls_ciphers[4096];
	if (f.cipher_suites != NULL && f.cipher_suites[0]) {
		char why[256];
		if (api_tls_ciphers(f.cipher_suites, openssl_ciphers, sizeof(openssl_ciphers),
				    gnutls_ciphers, sizeof(gnutls_ciphers), why, sizeof(why)) != 0) {
			fprintf(stderr, "metad: %s\n", why);
			flags_free(&f);
			return 1;
		}
		setenv("GRPC_SSL_CIPHER_SUITES", openssl_ciphers, 1);
	}
	static char crl_dir[4200];
	snprintf(crl_dir, sizeof(crl_dir), "%s/fixtures/crl", f.data_dir);
	struct core_config cc = {
		.name = f.name,
		.data_dir = f.data_dir,
		.client_urls = f.advertise_client_urls,
		.n_client_urls = f.n_advertise_client_urls,
		.peer_urls = f.initial_advertise_peer_urls,
		.n_peer_urls = f.n_initial_advertise_peer_urls,
		.cluster_token = f.initial_cluster_token,
		.initial_cluster = f.initial_cluster,
		.initial_cluster_state = f.initial_cluster_state,
		.listen_peer_urls = f.listen_peer_urls,
		.n_listen_peer_urls = f.n_listen_peer_urls,
		.peer_cert_file = f.peer_cert_file,
		.peer_key_file = f.peer_key_file,
		.peer_trusted_ca_file = f.peer_trusted_ca_file,
		.peer_client_cert_auth = f.peer_client_cert_auth,
		.heartbeat_ms = f.heartbeat_ms,
		.election_ms = f.election_ms,
		.snapshot_count = f.snapshot_count,
		.catchup_entries = f.catchup_entries,
		.pre_vote = f.pre_vote,
		.strict_reconfig_check = f.strict_reconfig_check,
		.force_new_cluster = f.force_new_cluster,
		.lease_checkpoint = f.lease_checkpoint,
		.lease_checkpoint_ms = f.lease_checkpoint_ms,
		.max_request_bytes = f.max_request_bytes,
		.max_txn_ops = f.max_txn_ops,
		.quota_backend_bytes = f.quota_backend_bytes,
		/* WiredTiger's cache; pages beyond it come from the OS page cache.
		 * Peak RSS loading 1M keys of 256 B: ~150 MiB at 64, ~170 at 96,
		 * ~415 at 256 (etcd ~500). 96 over 64: 1,000-client puts on 100k
		 * keys ~37k -> ~41k/s, with less dirty-page eviction (storage/db.c). */
		.cache_mb = 96,
		.watch_queue_bytes = f.watch_queue_bytes,
		.watch_progress_ms = f.watch_progress_ms,
		.bcrypt_cost = f.bcrypt_cost,
		.auth_token = f.auth_token,
		.auth_token_ttl_s = f.auth_token_ttl_s,
		.auto_compaction_mode = f.auto_compaction_mode == 1 ? CORE_AUTOCOMPACT_REVISION
								    : CORE_AUTOCOMPACT_PERIODIC,
		.auto_compaction_retention = f.auto_compaction_retention,
		.reserved = controllers_owned,
	};
	char err[512] = "";
	struct core *core = NULL;
	if (server_import_etcd(f.data_dir, f.import_etcd_snapshot, cc.cache_mb, err, sizeof(err)) !=
	    0) {
		fprintf(stderr, "metad: cannot import etcd data into %s: %s\n", f.data_dir, err);
		flags_free(&f);
		return 1;
	}
	static char auto_cert[4200], auto_key[4200];
	bool https = false;
	for (size_t i = 0; i < f.n_listen_client_urls; i++)
		https = https || strncmp(f.listen_client_urls[i], "https://", 8) == 0;
	if (f.auto_tls && https && (f.cert_file == NULL || f.key_file == NULL)) {
		char dir[4200];
		snprintf(dir, sizeof(dir), "%s/fixtures/client", f.data_dir);
		if (autotls_make(dir, f.listen_client_urls, f.n_listen_client_urls, 1, auto_cert,
				 auto_key, sizeof(auto_cert), err, sizeof(err)) != 0) {
			fprintf(stderr, "metad: --auto-tls: %s\n", err);
			flags_free(&f);
			return 1;
		}
		f.cert_file = auto_cert;
		f.key_file = auto_key;
		log_info("auto-tls: serving with a self-signed certificate", "cert-file", auto_cert);
	} else if (f.auto_tls && f.cert_file != NULL) {
		log_info("ignoring client auto TLS since certs given", "cert-file", f.cert_file);
	}
	if (core_open(&cc, &core, err, sizeof(err)) != CORE_OK) {
		fprintf(stderr, "metad: cannot open %s: %s\n", f.data_dir, err);
		flags_free(&f);
		return 1;
	}
	log_info("opened backend", "data-dir", f.data_dir);

	struct api_config ac = {
		.listen_urls = f.listen_client_urls,
		.n_listen_urls = f.n_listen_client_urls,
		.metrics_urls = f.listen_metrics_urls,
		.n_metrics_urls = f.n_listen_metrics_urls,
		.tls = {f.cert_file, f.key_file, f.trusted_ca_file, f.client_cert_auth,
			f.client_crl_file, crl_dir, gnutls_ciphers[0] ? gnutls_ciphers : NULL,
			f.tls_min_13},
		.max_request_bytes = f.max_request_bytes,
		.max_concurrent_streams = f.max_concurrent_streams,
	};
	struct api_server *api = NULL;
	if (api_start(&ac, core, &api, err, sizeof(err)) != 0) {
		fprintf(stderr, "metad: %s\n", err);
		core_close(core);
		flags_free(&f);
		return 1;
	}
	/* The controllers act only while this member leads (docs/controllers.md). */
	struct controllers *ctl = NULL;
	if (controllers_start(core, NULL, &ctl) != 0) {
		fprintf(stderr, "metad: cannot start the controllers\n");
		api_stop(api);
		core_close(core);
		flags_free(&f);
		return 1;
	}
	/* etcd serves at once but says it is ready only once this member has
	 * published itself through the log (a cluster has a leader). */
	int sig = 0;
	struct timespec poll = {0, 0};
	while (!core_wait_ready(core, 100)) {
		int got = sigtimedwait(&sigs, NULL, &poll);
		if (got > 0) {
			sig = got;
			break;
		}
	}
	if (sig == 0) {
		log_info("enabled capabilities for version", "cluster-version", CORE_CLUSTER_VERSION);
		for (size_t i = 0; i < f.n_listen_client_urls; i++)
			log_info("ready to serve client requests", "address", f.listen_client_urls[i]);
		/* A member removed from its cluster stops, as etcd's does. */
		struct timespec tick = {0, 100 * 1000 * 1000};
		while (sig == 0 && !core_removed(core)) {
			int got = sigtimedwait(&sigs, NULL, &tick);
			if (got > 0)
				sig = got;
		}
	}
	if (sig != 0)
		log_info("received signal; shutting down", "signal",
			 sig == SIGINT ? "interrupt" : "terminated");
	else
		log_info("shutting down: this member was removed from the cluster", NULL, NULL);
	controllers_stop(ctl);
	api_stop(api);
	core_close(core);
	log_info("stopped", NULL, NULL);
	flags_free(&f);
	return 0;
}

/*
 * server/main.c — process wiring: flags, start order, signals, stop order.
 *
 * Start: storage and write path (core), then the client API. Stop on SIGINT
 * or SIGTERM in reverse: the API stops accepting and lets in-flight calls
 * finish, then core drains its queue and closes WiredTiger cleanly.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>

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
 * pages go back to the OS after jemalloc's default 10 s, not sooner: at 1 s
 * the purging madvise calls (each a TLB shootdown across cores) and the page
 * faults that refill the same memory took ~10% of the CPU of every thread
 * under 1,000-client puts; 3 members used 69.7-75.0 us of CPU per put at
 * 1 s and 61.6-67.4 at 10 s (three alternating runs each). Peak RSS loading
 * 1M keys: 192-207 MiB at 1 s, 209-218 at 10 s.
 */
const char *malloc_conf = "dirty_decay_ms:10000,muzzy_decay_ms:0";

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

static int run(struct flags *f);

int main(int argc, char **argv)
{
	/*
	 * No OpenSSL teardown at exit: its atexit handler frees OpenSSL's
	 * global state and thread-local keys while gRPC's pool threads (a peer
	 * handshake in flight) may still use them at that moment; their
	 * per-thread random generators were then lost (LeakSanitizer saw it
	 * when a member stopped during a peer's reconnect). The process ends
	 * right after; the kernel takes the memory back. Must come before
	 * anything else initialises OpenSSL.
	 */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
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
	char err[512] = "";
	/* From here on every line goes through the logger (core/log.h);
	 * before it, flag errors are plain text, as etcd's flag parser's. */
	log_route_grpc();
	if (log_setup(f.logger, f.log_level, f.log_outputs, err, sizeof(err)) != 0) {
		fprintf(stderr, "error verifying flags, %s. See 'etcd --help'.\n", err);
		flags_free(&f);
		return 2;
	}
	int rc = run(&f);
	log_teardown();
	flags_free(&f);
	return rc;
}

static void core_config_of(const struct flags *f, struct core_config *cc)
{
	*cc = (struct core_config){
		.name = f->name,
		.data_dir = f->data_dir,
		.wal_dir = f->wal_dir,
		.client_urls = f->advertise_client_urls,
		.n_client_urls = f->n_advertise_client_urls,
		.peer_urls = f->initial_advertise_peer_urls,
		.n_peer_urls = f->n_initial_advertise_peer_urls,
		.cluster_token = f->initial_cluster_token,
		.initial_cluster = f->initial_cluster,
		.initial_cluster_state = f->initial_cluster_state,
		.listen_peer_urls = f->listen_peer_urls,
		.n_listen_peer_urls = f->n_listen_peer_urls,
		.peer_cert_file = f->peer_cert_file,
		.peer_key_file = f->peer_key_file,
		.peer_trusted_ca_file = f->peer_trusted_ca_file,
		.peer_client_cert_auth = f->peer_client_cert_auth,
		.peer_allowed_cn = f->peer_cert_allowed_cn,
		.peer_allowed_hostname = f->peer_cert_allowed_hostname,
		.peer_skip_client_san = f->peer_skip_client_san,
		.heartbeat_ms = f->heartbeat_ms,
		.election_ms = f->election_ms,
		.snapshot_count = f->snapshot_count,
		.catchup_entries = f->catchup_entries,
		.pre_vote = f->pre_vote,
		.strict_reconfig_check = f->strict_reconfig_check,
		.force_new_cluster = f->force_new_cluster,
		.lease_checkpoint = f->lease_checkpoint,
		.lease_checkpoint_ms = f->lease_checkpoint_ms,
		.max_request_bytes = f->max_request_bytes,
		.max_txn_ops = f->max_txn_ops,
		.quota_backend_bytes = f->quota_backend_bytes,
		/* WiredTiger's cache; pages beyond it come from the OS page cache.
		 * Peak RSS loading 1M keys of 256 B: ~150 MiB at 64, ~170 at 96,
		 * ~415 at 256 (etcd ~500). 96 over 64: 1,000-client puts on 100k
		 * keys ~37k -> ~41k/s, with less dirty-page eviction (storage/db.c). */
		.cache_mb = 96,
		.watch_queue_bytes = f->watch_queue_bytes,
		.watch_progress_ms = f->watch_progress_ms,
		.bcrypt_cost = f->bcrypt_cost,
		.auth_token = f->auth_token,
		.auth_token_ttl_s = f->auth_token_ttl_s,
		.auto_compaction_mode = f->auto_compaction_mode == 1 ? CORE_AUTOCOMPACT_REVISION
								     : CORE_AUTOCOMPACT_PERIODIC,
		.auto_compaction_retention = f->auto_compaction_retention,
		.initial_corrupt_check = f->initial_corrupt_check,
		.corrupt_check_ms = f->corrupt_check_ms,
		.checkpoint_interval_ms = f->backend_batch_interval_ms,
		.checkpoint_entries = f->backend_batch_limit,
		.compaction_batch_limit = f->compaction_batch_limit,
		.warning_apply_ns = f->warning_apply_ns,
		.reserved = controllers_owned,
	};
}

/* etcd's auto TLS for one side (which: "client" or "peer"): with https URLs
 * and no certificate given, a self-signed one for the URLs' hosts under
 * <data-dir>/fixtures/<which>. 1 when made (paths in cert and key, len bytes
 * each), 0 when not due, -1 with err. */
static int self_cert(const char *data_dir, const char *which, const char *const *urls, size_t n,
		     const char *cert_file, const char *key_file, char *cert, char *key, size_t len,
		     char *err, size_t errlen)
{
	bool https = false;
	for (size_t i = 0; i < n; i++)
		https = https || strncmp(urls[i], "https://", 8) == 0;
	if (!https || (cert_file != NULL && key_file != NULL))
		return 0;
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/fixtures/%s", data_dir, which);
	return autotls_make(dir, urls, n, 1, cert, key, len, err, errlen) != 0 ? -1 : 1;
}

/* --auto-tls: a self-signed client certificate when https URLs have none. */
static int auto_tls(struct flags *f, char *err, size_t errlen)
{
	static char auto_cert[4200], auto_key[4200];
	int made = f->auto_tls ? self_cert(f->data_dir, "client", f->listen_client_urls,
					  f->n_listen_client_urls, f->cert_file, f->key_file,
					  auto_cert, auto_key, sizeof(auto_cert), err, errlen)
			       : 0;
	if (made < 0)
		return -1;
	if (made) {
		f->cert_file = auto_cert;
		f->key_file = auto_key;
		core_log_kv("info", "auto-tls: serving with a self-signed certificate", "{s:s}",
			    "cert-file", auto_cert);
	} else if (f->auto_tls && f->cert_file != NULL) {
		core_log_kv("info", "ignoring client auto TLS since certs given", "{s:s}", "cert-file",
			    f->cert_file);
	}
	return 0;
}

/* --peer-auto-tls and --peer-crl-file: files the peer transport takes,
 * made under the data dir as etcd makes them (fixtures/peer). */
static int peer_tls_files(const struct flags *f, struct core_config *cc, char *err, size_t errlen)
{
	static char cert[4200], key[4200], crl_dir[4200];
	/* etcd's check, in its words. */
	if (f->peer_cert_allowed_cn != NULL && f->peer_cert_allowed_hostname != NULL) {
		snprintf(err, errlen,
			 "AllowedCN and AllowedHostname are mutually exclusive (cn=\"%s\", hostname=\"%s\")",
			 f->peer_cert_allowed_cn, f->peer_cert_allowed_hostname);
		return -1;
	}
	int made = f->peer_auto_tls ? self_cert(f->data_dir, "peer", f->listen_peer_urls,
					       f->n_listen_peer_urls, f->peer_cert_file,
					       f->peer_key_file, cert, key, sizeof(cert), err, errlen)
				    : 0;
	if (made < 0)
		return -1;
	if (made) {
		cc->peer_cert_file = cert;
		cc->peer_key_file = key;
		/* As etcd: the generated setup replaces the whole peer TLS one,
		 * so peers' certificates are not verified nor asked for. */
		cc->peer_self_signed = true;
		core_log_kv("info", "peer-auto-tls: peers connect with a self-signed certificate",
			    "{s:s}", "cert-file", cert);
	} else if (f->peer_auto_tls && f->peer_cert_file != NULL) {
		core_log_kv("warn", "ignoring peer auto TLS since certs given", "{s:s}", "cert-file",
			    f->peer_cert_file);
	}
	if (f->peer_crl_file != NULL && f->peer_crl_file[0]) {
		snprintf(crl_dir, sizeof(crl_dir), "%s/fixtures/peer-crl", f->data_dir);
		/* A bad file is refused before the data dir is made. */
		FILE *probe = fopen(f->peer_crl_file, "r");
		if (probe == NULL) {
			snprintf(err, errlen, "--peer-crl-file %s: %s", f->peer_crl_file,
				 strerror(errno));
			return -1;
		}
		fclose(probe);
		/* The data dir of a new member does not exist yet. */
		if (mkdir(f->data_dir, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", f->data_dir, strerror(errno));
			return -1;
		}
		if (api_tls_crl_dir("--peer-crl-file", f->peer_crl_file, crl_dir, err, errlen) != 0)
			return -1;
		cc->peer_crl_dir = crl_dir;
	}
	return 0;
}

/* Until SIGINT/SIGTERM or this member's removal; the signal, 0, or -1 when
 * the client port cannot serve. */
static int serve(struct flags *f, struct core *core, struct api_server *api, const sigset_t *sigs)
{
	/* As etcd's: the client port is bound from the start but serves only
	 * once this member has published itself through the log (so a new or
	 * restarted member answers no read before it has caught up to that);
	 * until then connections wait in the backlog. */
	int sig = 0;
	struct timespec poll = {0, 0};
	while (!core_wait_ready(core, 100)) {
		int got = sigtimedwait(sigs, NULL, &poll);
		if (got > 0)
			return got;
		if (core_removed(core)) /* removed before it could publish */
			return 0;
	}
	char err[256];
	if (api_accept(api, err, sizeof(err)) != 0) {
		core_log_kv("fatal", "cannot serve clients", "{s:s}", "error", err);
		return -1;
	}
	core_log_kv("info", "enabled capabilities for version", "{s:s}", "cluster-version",
		    CORE_CLUSTER_VERSION);
	for (size_t i = 0; i < f->n_listen_client_urls; i++)
		core_log_kv("info", "ready to serve client requests", "{s:s}", "address",
			    f->listen_client_urls[i]);
	/* A member removed from its cluster stops, as etcd's does. */
	struct timespec tick = {0, 100 * 1000 * 1000};
	while (sig == 0 && !core_removed(core)) {
		int got = sigtimedwait(sigs, NULL, &tick);
		if (got > 0)
			sig = got;
	}
	return sig;
}

static int run(struct flags *f)
{
	for (size_t i = 0; i < f->n_notes; i++) /* what flag parsing had to say */
		core_log(f->notes[i].level, "%s", f->notes[i].text);
	/* Signals are taken by sigwait below, never by the worker threads. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	core_log_kv("info", "starting metad", "{s:s}", "version", METAD_VERSION);
	/* Before the first grpc_init (the peer transport's, in core_open). */
	absl_deadlock_detection_off();
	struct core_config cc;
	core_config_of(f, &cc);
	char err[512] = "";
	/* --cipher-suites: gRPC core's TLS (client port and peers, as etcd's
	 * flag covers both) reads its list from the environment. */
	static char openssl_ciphers[4096], gnutls_ciphers[4096];
	if (f->cipher_suites != NULL && f->cipher_suites[0]) {
		if (api_tls_ciphers(f->cipher_suites, openssl_ciphers, sizeof(openssl_ciphers),
				    gnutls_ciphers, sizeof(gnutls_ciphers), err, sizeof(err)) != 0) {
			core_log_kv("fatal", err, "{}");
			return 1;
		}
		setenv("GRPC_SSL_CIPHER_SUITES", openssl_ciphers, 1);
	}
	static char crl_dir[4200];
	snprintf(crl_dir, sizeof(crl_dir), "%s/fixtures/crl", f->data_dir);
	struct core *core = NULL;
	if (server_import_etcd(f->data_dir, f->wal_dir, f->import_etcd_snapshot, cc.cache_mb, err,
			       sizeof(err)) != 0) {
		core_log_kv("fatal", "cannot import etcd data", "{s:s,s:s}", "data-dir", f->data_dir,
			    "error", err);
		return 1;
	}
	if (auto_tls(f, err, sizeof(err)) != 0) {
		core_log_kv("fatal", "--auto-tls: cannot make a certificate", "{s:s}", "error", err);
		return 1;
	}
	if (peer_tls_files(f, &cc, err, sizeof(err)) != 0) {
		core_log_kv("fatal", "cannot set up peer TLS", "{s:s}", "error", err);
		return 1;
	}
	/* The client port is bound before the store opens, as etcd does (api.h). */
	struct api_listen *bound =
		api_bind(f->listen_client_urls, f->n_listen_client_urls, err, sizeof(err));
	if (bound == NULL) {
		core_log_kv("fatal", "cannot serve clients", "{s:s}", "error", err);
		return 1;
	}
	/* etcd binds its peer listeners first of all: a taken peer port fails
	 * the start before the data dir is made. The transport (gRPC's own
	 * listener) binds for good in core_open; this probe only moves the
	 * failure ahead of the store, for a lone member too. */
	struct api_listen *peer_probe =
		api_bind(f->listen_peer_urls, f->n_listen_peer_urls, err, sizeof(err));
	if (peer_probe == NULL) {
		core_log_kv("fatal", "cannot listen for peers", "{s:s}", "error", err);
		api_unbind(bound);
		return 1;
	}
	api_unbind(peer_probe);
	if (core_open(&cc, &core, err, sizeof(err)) != CORE_OK) {
		core_log_kv("fatal", "cannot open the data dir", "{s:s,s:s}", "data-dir", f->data_dir,
			    "error", err);
		api_unbind(bound);
		return 1;
	}
	core_log_kv("info", "opened backend", "{s:s,s:s}", "data-dir", f->data_dir, "wal-dir",
		    f->wal_dir ? f->wal_dir : "");

	struct api_config ac = {
		.listen_urls = f->listen_client_urls,
		.n_listen_urls = f->n_listen_client_urls,
		.metrics_urls = f->listen_metrics_urls,
		.n_metrics_urls = f->n_listen_metrics_urls,
		.tls = {.cert_file = f->cert_file,
			.key_file = f->key_file,
			.trusted_ca_file = f->trusted_ca_file,
			.client_cert_auth = f->client_cert_auth,
			.crl_file = f->client_crl_file,
			.crl_dir = crl_dir,
			.allowed_hostname = f->client_cert_allowed_hostname,
			.gnutls_ciphers = gnutls_ciphers[0] ? gnutls_ciphers : NULL,
			.tls13_min = f->tls_min_13},
		.max_request_bytes = f->max_request_bytes,
		.max_concurrent_streams = f->max_concurrent_streams,
		.keepalive_min_ms = f->grpc_keepalive_min_ms,
		.keepalive_interval_ms = f->grpc_keepalive_interval_ms,
		.keepalive_timeout_ms = f->grpc_keepalive_timeout_ms,
		.cors = f->cors,
		.host_whitelist = f->host_whitelist,
		.metrics_extensive = f->metrics_extensive,
		.bound = bound,
	};
	struct api_server *api = NULL;
	if (api_start(&ac, core, &api, err, sizeof(err)) != 0) {
		core_log_kv("fatal", "cannot serve clients", "{s:s}", "error", err);
		core_close(core);
		return 1;
	}
	/* The controllers act only while this member leads (docs/controllers.md). */
	struct controllers *ctl = NULL;
	if (controllers_start(core, NULL, &ctl) != 0) {
		core_log("fatal", "cannot start the controllers");
		api_stop(api);
		core_close(core);
		return 1;
	}
	int sig = serve(f, core, api, &sigs);
	if (sig > 0)
		core_log_kv("info", "received signal; shutting down", "{s:s}", "signal",
			    sig == SIGINT ? "interrupt" : "terminated");
	else if (sig == 0)
		core_log("info", "shutting down: this member was removed from the cluster");
	controllers_stop(ctl);
	api_stop(api);
	core_close(core);
	core_log("info", "stopped");
	return sig < 0 ? 1 : 0;
}

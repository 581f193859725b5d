/*
 * server/flags.h — etcd's command-line flags, as metad understands them.
 *
 * Flags have etcd's names and defaults. Every other etcd 3.4 server flag is
 * accepted and ignored with a warning, so scripts written for etcd start
 * metad unchanged.
 */
#ifndef METAD_SERVER_FLAGS_H
#define METAD_SERVER_FLAGS_H

#include <stddef.h>
#include <stdint.h>

#define FLAGS_MAX_URLS 16

struct flags {
	const char *name;
	const char *data_dir; /* default: <name>.metad */
	const char *listen_client_urls[FLAGS_MAX_URLS];
	size_t n_listen_client_urls;
	const char *listen_metrics_urls[FLAGS_MAX_URLS]; /* --listen-metrics-urls (plain HTTP) */
	int auto_tls; /* --auto-tls: a self-signed client certificate (autotls.c) */
	const char *import_etcd_snapshot; /* --import-etcd-snapshot (metad): start from etcd's data */
	size_t n_listen_metrics_urls;
	const char *advertise_client_urls[FLAGS_MAX_URLS];
	size_t n_advertise_client_urls;
	const char *listen_peer_urls[FLAGS_MAX_URLS];
	size_t n_listen_peer_urls;
	const char *initial_advertise_peer_urls[FLAGS_MAX_URLS];
	size_t n_initial_advertise_peer_urls;
	const char *initial_cluster;
	const char *initial_cluster_state;
	const char *initial_cluster_token;
	const char *cert_file;
	const char *key_file;
	const char *trusted_ca_file;
	int client_cert_auth;
	const char *client_crl_file; /* --client-crl-file: revoked client certificates (PEM) */
	const char *cipher_suites;   /* --cipher-suites: IANA names, comma-separated */
	int tls_min_13;              /* --tls-min-version TLS1.3 (default TLS1.2) */
	const char *peer_cert_file;
	const char *peer_key_file;
	const char *peer_trusted_ca_file;
	int peer_client_cert_auth;
	int64_t heartbeat_ms;    /* --heartbeat-interval (100) */
	int64_t election_ms;     /* --election-timeout (1000) */
	uint64_t snapshot_count; /* --snapshot-count (100000) */
	uint64_t catchup_entries; /* --experimental-snapshot-catchup-entries (5000) */
	int pre_vote;            /* --pre-vote (true, as etcd 3.5) */
	int strict_reconfig_check; /* --strict-reconfig-check (true) */
	int force_new_cluster;     /* --force-new-cluster */
	int lease_checkpoint;      /* --experimental-enable-lease-checkpoint (metad: true) */
	int64_t lease_checkpoint_ms; /* --experimental-lease-checkpoint-interval (5m) */
	uint64_t max_request_bytes;
	uint32_t max_txn_ops;
	int64_t quota_backend_bytes;
	uint32_t max_concurrent_streams;
	int64_t watch_progress_ms;  /* --experimental-watch-progress-notify-interval (10m) */
	uint64_t watch_queue_bytes; /* --watch-queue-bytes: per Watch stream send queue (4 MiB) */
	int bcrypt_cost;            /* --bcrypt-cost (10) */
	const char *auth_token;     /* --auth-token (simple) */
	int64_t auth_token_ttl_s;   /* --auth-token-ttl (300) */
	const char *auto_compaction_mode_s;      /* --auto-compaction-mode (periodic) */
	const char *auto_compaction_retention_s; /* --auto-compaction-retention (0: off) */
	int auto_compaction_mode;           /* 0 periodic, 1 revision (core's CORE_AUTOCOMPACT_*) */
	int64_t auto_compaction_retention;  /* periodic: ns; revision: revisions */
	int help;
	int version;
	char data_dir_buf[4096];
	char *url_storage; /* split copies of URL lists */
};

/* Parse argv. Returns 0, or -1 after printing an error (exit code 2). */
int flags_parse(struct flags *f, int argc, char **argv);
void flags_free(struct flags *f);
/* Set one flag by name from a string (config file, environment): 0, or -1
 * after printing etcd's error. v must live as long as f. */
int flags_set(struct flags *f, const char *name, const char *v);
/* Whether name is an etcd flag metad accepts. */
int flags_known(const char *name);
void flags_usage(void);

#endif

/*
 * server/flags.h — etcd's command-line flags, as metad understands them.
 *
 * Flags have etcd's names and defaults. Every etcd 3.4 server flag is
 * accepted, so scripts written for etcd start metad unchanged; README.md's
 * flags table says what each does here. A flag set to something metad
 * cannot do is refused at start-up rather than ignored; the few that are
 * ignored say so in a warning.
 */
#ifndef METAD_SERVER_FLAGS_H
#define METAD_SERVER_FLAGS_H

#include <stddef.h>
#include <stdint.h>

#define FLAGS_MAX_URLS 16
#define FLAGS_MAX_NOTES 24

/* A message from parsing, logged once the logger is set up. */
struct flags_note {
	const char *level; /* "info" or "warn" */
	char text[240];
};

struct flags {
	const char *name;
	const char *data_dir; /* default: <name>.metad */
	const char *listen_client_urls[FLAGS_MAX_URLS];
	size_t n_listen_client_urls;
	const char *listen_metrics_urls[FLAGS_MAX_URLS]; /* --listen-metrics-urls (plain HTTP) */
	const char *cors;           /* --cors as given (NULL: "*"), checked as etcd checks it */
	const char *host_whitelist; /* --host-whitelist as given (NULL: "*") */
	int metrics_extensive;      /* --metrics extensive (default basic) */
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
	const char *client_cert_allowed_hostname; /* --client-cert-allowed-hostname */
	const char *cipher_suites;   /* --cipher-suites: IANA names, comma-separated */
	int tls_min_13;              /* --tls-min-version TLS1.3 (default TLS1.2) */
	const char *peer_cert_file;
	const char *peer_key_file;
	const char *peer_trusted_ca_file;
	int peer_client_cert_auth;
	int peer_auto_tls;                 /* --peer-auto-tls (autotls.c) */
	const char *peer_crl_file;         /* --peer-crl-file: revoked peer certificates (PEM) */
	const char *peer_cert_allowed_cn;  /* --peer-cert-allowed-cn */
	const char *peer_cert_allowed_hostname; /* --peer-cert-allowed-hostname */
	int peer_skip_client_san;          /* --experimental-peer-skip-client-san-verification */
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
	const char *wal_dir;      /* --wal-dir: the log's own directory (NULL: in data_dir) */
	const char *logger;       /* --logger (zap; capnslog is accepted, zap used) */
	const char *log_level;    /* --log-level (info; --debug: debug) */
	const char *log_outputs;  /* --log-outputs (default = stderr) */
	int64_t grpc_keepalive_min_ms;      /* --grpc-keepalive-min-time (5s) */
	int64_t grpc_keepalive_interval_ms; /* --grpc-keepalive-interval (2h; 0: off) */
	int64_t grpc_keepalive_timeout_ms;  /* --grpc-keepalive-timeout (20s; 0: off) */
	int initial_corrupt_check;          /* --experimental-initial-corrupt-check */
	int64_t corrupt_check_ms;           /* --experimental-corrupt-check-time (0: off) */
	int64_t backend_batch_interval_ms;  /* --backend-batch-interval (0: metad's 30 s) */
	uint64_t backend_batch_limit;       /* --backend-batch-limit (0: by log bytes) */
	uint64_t compaction_batch_limit;    /* --experimental-compaction-batch-limit (1000) */
	int64_t warning_apply_ns;           /* --experimental-warning-apply-duration (100ms) */
	int debug;                /* --debug (deprecated): --log-level debug */
	int enable_v2;            /* --enable-v2: refused (v3 API only) */
	const char *v2v3_prefix;  /* --experimental-enable-v2v3: refused */
	const char *proxy;        /* --proxy: anything but off is refused */
	const char *discovery;    /* the discovery flag set, if any: refused */
	struct flags_note notes[FLAGS_MAX_NOTES];
	size_t n_notes;
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
/* Keep a message for the log (printf format; dropped past FLAGS_MAX_NOTES). */
void flags_note(struct flags *f, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Whether name is an etcd flag metad accepts. */
int flags_known(const char *name);
void flags_usage(void);

#endif

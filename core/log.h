/*
 * core/log.h — the one logger every message of the server goes through.
 *
 * ETCD-COMPAT: etcd's zap logger: one JSON object per line with "level",
 * "ts" (ISO 8601, milliseconds), "caller" (dir/file:line), "msg", then the
 * message's fields, in that order. --log-level drops what is below it;
 * --log-outputs names where lines go (stderr, stdout, files; "default" is
 * stderr). Operators' scripts and test harnesses match on msg texts
 * ("ready to serve client requests", "became leader", ...): keep them.
 *
 * Before log_setup the logger writes info and above to stderr. Thread-safe:
 * each line is written whole, under one lock, to every output.
 */
#ifndef METAD_CORE_LOG_H
#define METAD_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* zap's levels, in order. */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_PANIC, LOG_FATAL };

struct json_t; /* jansson's */

/*
 * Configure from etcd's flags: logger "zap" or "capnslog" (etcd 3.4's old
 * logger: zap is used, and log_setup logs a warning saying so), level (one
 * of zap's names), outputs (comma-separated: default, stderr, stdout or a
 * file path, appended to). NULL takes etcd's default for that flag. Returns
 * 0, or -1 with err filled (unknown logger or level, "default" among other
 * outputs, a file that cannot be opened); the old configuration then stays.
 */
int log_setup(const char *logger, const char *level, const char *outputs, char *err,
	      size_t errlen);
/* Close the files log_setup opened; later lines go to stderr. */
void log_teardown(void);

/* zap's name of a level ("debug" ... "fatal"), and back: -1 if unknown. */
const char *log_level_name(enum log_level lv);
int log_level_parse(const char *name);
/* Whether a message at lv would be written (skip building costly fields). */
bool log_enabled(enum log_level lv);

/*
 * The entry points; use the macros below, which fill in the caller. level
 * is a level name ("info", "warn", ...; an unknown name counts as info).
 * The logger writes the line and returns whatever the level: a caller that
 * logs "fatal" stops the process itself.
 */
void log_printf_at(const char *file, int line, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* msg plus the fields jansson's json_pack builds from fmt ("{s:s,s:I}", key,
 * value, ...); a fields error is logged in place of the fields. */
void log_pack_at(const char *file, int line, const char *level, const char *msg,
		 const char *fmt, ...);
/* msg plus the members of fields (an object, borrowed; NULL: none). */
void log_json_at(const char *file, int line, const char *level, const char *msg,
		 struct json_t *fields);

/* A message from printf's format: core_log("info", "%llx became leader", id). */
#define core_log(level, ...) log_printf_at(__FILE__, __LINE__, (level), __VA_ARGS__)
/* A fixed message with fields: core_log_kv("info", "opened backend",
 * "{s:s}", "data-dir", dir). */
#define core_log_kv(level, msg, ...) log_pack_at(__FILE__, __LINE__, (level), (msg), __VA_ARGS__)

/*
 * Route gRPC core's own messages (gpr_log) through this logger, at their
 * severity, with gRPC's file and line as the caller. Call before grpc_init.
 */
void log_route_grpc(void);

#endif

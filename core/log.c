/*
 * core/log.c — zap's JSON lines (see log.h), built and escaped by jansson.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define MAX_OUTPUTS 8

struct output {
	int fd;
	bool owned; /* a file log_setup opened */
};

/* Outputs change only in log_setup/log_teardown, under mu, as lines do. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct output outs[MAX_OUTPUTS] = {{STDERR_FILENO, false}};
static size_t n_outs = 1;
static atomic_int min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "panic", "fatal"};

const char *log_level_name(enum log_level lv)
{
	return (unsigned)lv <= LOG_FATAL ? level_names[lv] : "info";
}

int log_level_parse(const char *name)
{
	for (int i = LOG_DEBUG; i <= LOG_FATAL; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

bool log_enabled(enum log_level lv)
{
	return (int)lv >= atomic_load(&min_level);
}

/* zap's ISO8601TimeEncoder: local time, milliseconds, "Z" or +hhmm. */
static void format_ts(char *buf, size_t len)
{
	struct timespec now;
	struct tm tm;
	char date[32];
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	long ms = now.tv_nsec / 1000000, off = tm.tm_gmtoff;
	if (off == 0) {
		snprintf(buf, len, "%s.%03ldZ", date, ms);
		return;
	}
	int a = (int)((off < 0 ? -off : off) % 86400);
	snprintf(buf, len, "%s.%03ld%c%02d%02d", date, ms, off < 0 ? '-' : '+', a / 3600,
		 a % 3600 / 60);
}

/* zap's ShortCallerEncoder: the last directory and the file, ":line". */
static void format_caller(char *buf, size_t len, const char *file, int line)
{
	const char *p = file + strlen(file);
	int slashes = 0;
	while (p > file && !(p[-1] == '/' && ++slashes == 2))
		p--;
	snprintf(buf, len, "%s:%d", p, line);
}

/* A JSON string of s; jansson accepts only UTF-8, so other bytes become '?'. */
static json_t *text(const char *s)
{
	json_t *j = json_string(s);
	if (j != NULL)
		return j;
	char *copy = strdup(s);
	if (copy == NULL)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere to report a failing log output */
		p += w;
		n -= (size_t)w;
	}
}

static void emit(const char *file, int line, int lv, const char *msg, json_t *fields)
{
	char ts[64], caller[160];
	format_ts(ts, sizeof(ts));
	format_caller(caller, sizeof(caller), file, line);
	json_t *o = json_object();
	char *s = NULL;
	if (o != NULL && json_object_set_new(o, "level", json_string(level_names[lv])) == 0 &&
	    json_object_set_new(o, "ts", json_string(ts)) == 0 &&
	    json_object_set_new(o, "caller", text(caller)) == 0 &&
	    json_object_set_new(o, "msg", text(msg)) == 0 &&
	    (fields == NULL || json_object_update(o, fields) == 0))
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	size_t n = s != NULL ? strlen(s) : 0;
	char *buf = s != NULL ? realloc(s, n + 2) : NULL;
	if (buf != NULL) { /* one write per line: whole even in a shared file */
		s = buf;
		s[n++] = '\n';
		s[n] = 0;
	}
	/* Out of memory: a fixed line still says something went wrong. */
	static const char oom[] =
		"{\"level\":\"error\",\"msg\":\"out of memory writing a log line\"}\n";
	const char *out = buf != NULL ? buf : oom;
	n = buf != NULL ? n : sizeof(oom) - 1;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < n_outs; i++)
		write_all(outs[i].fd, out, n);
	pthread_mutex_unlock(&mu);
	free(s);
}

static int level_of(const char *name)
{
	int lv = log_level_parse(name);
	return lv < 0 ? LOG_INFO : lv;
}

void log_printf_at(const char *file, int line, const char *level, const char *fmt, ...)
{
	int lv = level_of(level);
	if (!log_enabled(lv))
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(file, line, lv, msg, NULL);
}

void log_pack_at(const char *file, int line, const char *level, const char *msg,
		 const char *fmt, ...)
{
	int lv = level_of(level);
	if (!log_enabled(lv))
		return;
	json_error_t jerr;
	va_list ap;
	va_start(ap, fmt);
	json_t *fields = json_vpack_ex(&jerr, 0, fmt, ap);
	va_end(ap);
	if (fields == NULL) /* a caller's mistake: say so rather than drop the line */
		fields = json_pack("{s:s}", "log-fields-error", jerr.text);
	emit(file, line, lv, msg, json_is_object(fields) ? fields : NULL);
	json_decref(fields);
}

void log_json_at(const char *file, int line, const char *level, const char *msg, json_t *fields)
{
	int lv = level_of(level);
	if (log_enabled(lv))
		emit(file, line, lv, msg, json_is_object(fields) ? fields : NULL);
}

static void close_owned(struct output *o, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (o[i].owned)
			close(o[i].fd);
}

/* Parse outputs into o; -1 with err (files opened so far are closed). */
static int open_outputs(const char *outputs, struct output *o, size_t *n, char *err, size_t errlen)
{
	char *copy = strdup(outputs), *save = NULL;
	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*n = 0;
	bool has_default = false;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n == MAX_OUTPUTS) {
			snprintf(err, errlen, "more than %d log outputs", MAX_OUTPUTS);
			goto fail;
		}
		struct output out = {-1, false};
		if (strcmp(tok, "default") == 0 || strcmp(tok, "stderr") == 0) {
			has_default = has_default || strcmp(tok, "default") == 0;
			out.fd = STDERR_FILENO;
		} else if (strcmp(tok, "stdout") == 0) {
			out.fd = STDOUT_FILENO;
		} else if (strcmp(tok, "systemd/journal") == 0) {
			/* Under systemd, journald takes stderr anyway. */
			snprintf(err, errlen, "log output \"systemd/journal\" is not supported by metad; "
					      "use stderr (journald captures it under systemd)");
			goto fail;
		} else {
			out.fd = open(tok, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
			if (out.fd < 0) {
				snprintf(err, errlen, "open %s: %s", tok, strerror(errno));
				goto fail;
			}
			out.owned = true;
		}
		o[(*n)++] = out;
	}
	/* etcd's own check, in its words. */
	if (has_default && *n > 1) {
		snprintf(err, errlen, "multi logoutput for \"default\" is not supported yet");
		goto fail;
	}
	if (*n == 0)
		o[(*n)++] = (struct output){STDERR_FILENO, false};
	free(copy);
	return 0;
fail:
	close_owned(o, *n);
	free(copy);
	return -1;
}

int log_setup(const char *logger, const char *level, const char *outputs, char *err,
	      size_t errlen)
{
	logger = logger ? logger : "zap";
	bool capnslog = strcmp(logger, "capnslog") == 0;
	if (!capnslog && strcmp(logger, "zap") != 0) {
		snprintf(err, errlen, "unknown logger option \"%s\"", logger);
		return -1;
	}
	int lv = log_level_parse(level ? level : "info");
	if (lv < 0) {
		snprintf(err, errlen, "unknown log level \"%s\" (only supports debug, info, warn, "
				      "error, panic, or fatal)", level);
		return -1;
	}
	struct output o[MAX_OUTPUTS];
	size_t n;
	if (open_outputs(outputs ? outputs : "default", o, &n, err, errlen) != 0)
		return -1;
	pthread_mutex_lock(&mu);
	close_owned(outs, n_outs);
	memcpy(outs, o, n * sizeof(o[0]));
	n_outs = n;
	atomic_store(&min_level, lv);
	pthread_mutex_unlock(&mu);
	if (capnslog)
		core_log("warn", "--logger=capnslog is not supported (etcd 3.5 removed it); "
				 "logging with zap's JSON lines instead");
	return 0;
}

void log_teardown(void)
{
	pthread_mutex_lock(&mu);
	close_owned(outs, n_outs);
	outs[0] = (struct output){STDERR_FILENO, false};
	n_outs = 1;
	pthread_mutex_unlock(&mu);
}

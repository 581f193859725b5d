/*
 * storage/waldir.c — where a store's write-ahead data lives (--wal-dir).
 *
 * With a WAL directory, WiredTiger's journal and the Raft log tables go
 * there instead of the data dir (db.c), as etcd's member/wal does. The data
 * dir then holds a marker file naming that directory, written before the
 * store is created, so that a later start without --wal-dir, or with
 * another one, is refused: it would otherwise find no journal and no log
 * and start as if they were empty.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/db_internal.h"

#define MARKER "wal-dir"

static bool exists(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* The marker's directory into buf ("" when there is no marker); -1 on a
 * read error. */
static int read_marker(const char *dir, char *buf, size_t len)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/" MARKER, dir);
	buf[0] = 0;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	bool ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return ok ? 0 : -1;
}

/* Write the marker durably: a temporary file, synced, renamed, dir synced. */
static int write_marker(const char *dir, const char *wal)
{
	char tmp[PATH_MAX + 64], path[PATH_MAX + 64];
	snprintf(tmp, sizeof(tmp), "%s/" MARKER ".tmp", dir);
	snprintf(path, sizeof(path), "%s/" MARKER, dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	size_t n = strlen(wal);
	bool ok = write(fd, wal, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0)
		return -1;
	int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return -1;
	int rv = fsync(d);
	close(d);
	return rv;
}

/* Whether dir holds another store's journal or Raft log. */
static bool holds_wal(const char *dir)
{
	DIR *d = opendir(dir);
	bool found = false;
	for (struct dirent *e; d && !found && (e = readdir(d)) != NULL;)
		found = strncmp(e->d_name, "WiredTigerLog.", 14) == 0 ||
			strcmp(e->d_name, "raft_log.wt") == 0;
	if (d != NULL)
		closedir(d);
	return found;
}

int db_wal_resolve(const char *dir, const char *wal_dir, char *abs, size_t len, char *err,
		   size_t errlen)
{
	char recorded[PATH_MAX + 2], data_abs[PATH_MAX];
	abs[0] = 0;
	if (read_marker(dir, recorded, sizeof(recorded)) != 0) {
		snprintf(err, errlen, "cannot read %s/" MARKER ": %s", dir, strerror(errno));
		return DB_IO;
	}
	if (wal_dir == NULL || wal_dir[0] == 0) {
		if (recorded[0] == 0)
			return DB_OK;
		snprintf(err, errlen,
			 "data dir %s keeps its write-ahead log in %s (it was created with --wal-dir); "
			 "start with --wal-dir %s",
			 dir, recorded, recorded);
		return DB_INVALID;
	}
	if (mkdir(wal_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create wal dir %s: %s", wal_dir, strerror(errno));
		return DB_IO;
	}
	char real[PATH_MAX];
	if (realpath(wal_dir, real) == NULL || realpath(dir, data_abs) == NULL) {
		snprintf(err, errlen, "wal dir %s: %s", wal_dir, strerror(errno));
		return DB_IO;
	}
	if (strchr(real, '"') != NULL || strlen(real) + 1 > len) {
		snprintf(err, errlen, "wal dir %s: unusable path", real);
		return DB_INVALID;
	}
	if (recorded[0] != 0) {
		if (strcmp(recorded, real) != 0) {
			snprintf(err, errlen,
				 "data dir %s keeps its write-ahead log in %s, not in --wal-dir %s", dir,
				 recorded, real);
			return DB_INVALID;
		}
		snprintf(abs, len, "%s", real);
		return DB_OK;
	}
	/* The data dir itself: the same layout as without --wal-dir. */
	if (strcmp(real, data_abs) == 0)
		return DB_OK;
	if (exists(dir, "WiredTiger")) {
		snprintf(err, errlen,
			 "data dir %s holds a store whose write-ahead log is in the data dir; it "
			 "cannot move to --wal-dir %s (start without --wal-dir)",
			 dir, real);
		return DB_INVALID;
	}
	if (holds_wal(real)) {
		snprintf(err, errlen, "wal dir %s already holds another store's write-ahead log", real);
		return DB_INVALID;
	}
	if (write_marker(dir, real) != 0) {
		snprintf(err, errlen, "cannot write %s/" MARKER ": %s", dir, strerror(errno));
		return DB_IO;
	}
	snprintf(abs, len, "%s", real);
	return DB_OK;
}

/*
 * tests/storage/test_mvcc_crash.c — a synced commit survives SIGKILL.
 *
 * A child process writes requests, each committed with sync=1, and reports
 * every acknowledged revision through a pipe; after a while it kills itself
 * with SIGKILL (no close, no checkpoint). The parent reopens the store and
 * checks that every acknowledged write is there with its revision, and that
 * the consistent index matches, as the apply loop's replay relies on it.
 */
#include <signal.h>
#include <sys/wait.h>

#include "tests/storage/fixture.h"

enum { WRITES = 200 };

static void child(const char *dir, int fd)
{
	struct fx f;
	memset(&f, 0, sizeof(f));
	snprintf(f.dir, sizeof(f.dir), "%s", dir);
	fx_open_dir(&f);
	char k[16], v[16];
	for (int i = 0; i < WRITES; i++) {
		snprintf(k, sizeof(k), "k%03d", i % 50);
		snprintf(v, sizeof(v), "v%d", i);
		REQUIRE(db_txn_begin(f.s) == DB_OK);
		mvcc_req_begin(f.m, f.s);
		REQUIRE(mvcc_put(f.m, f.s, (const uint8_t *)k, strlen(k), (const uint8_t *)v,
				 strlen(v), 0, NULL, NULL) == DB_OK);
		int64_t rev = mvcc_req_end(f.m, f.s);
		REQUIRE(mvcc_commit(f.m, f.s, (uint64_t)i + 1, 1) == DB_OK);
		REQUIRE(write(fd, &rev, sizeof(rev)) == sizeof(rev));
	}
	raise(SIGKILL);
}

int main(void)
{
	char dir[64];
	int p[2];
	check_tmpdir(dir, sizeof(dir));
	REQUIRE(pipe(p) == 0);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		child(dir, p[1]);
		_exit(0);
	}
	close(p[1]);
	int64_t rev, acked = 0;
	while (read(p[0], &rev, sizeof(rev)) == sizeof(rev))
		acked = rev;
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK_EQ(acked, 1 + WRITES);

	struct fx f;
	memset(&f, 0, sizeof(f));
	snprintf(f.dir, sizeof(f.dir), "%s", dir);
	fx_open_dir(&f);
	CHECK_EQ(mvcc_rev(f.m), acked);
	CHECK_EQ(mvcc_consistent_index(f.m), WRITES);
	char v[16], want[16];
	for (int i = WRITES - 50; i < WRITES; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%03d", i % 50);
		snprintf(want, sizeof(want), "v%d", i);
		CHECK_EQ(fx_get(&f, k, 0, v, sizeof(v)), i + 2);
		CHECK(strcmp(v, want) == 0);
	}
	/* History is intact too. */
	CHECK_EQ(fx_get(&f, "k000", 2, v, sizeof(v)), 2);
	CHECK(strcmp(v, "v0") == 0);
	fx_close(&f);
	return check_done("test_mvcc_crash");
}

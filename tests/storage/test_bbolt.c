/*
 * tests/storage/test_bbolt.c — the bbolt writer's two modes make the same
 * file: written to a file descriptor, and streamed (a dry run that lays
 * the file out, then a run whose pages are emitted in order with the first
 * three pages kept aside). The buckets hold enough keys for two branch
 * levels, and values larger than a page (overflow pages); the reader finds
 * every key again.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "storage/bbolt.h"
#include "storage/db.h"
#include "tests/storage/check.h"

#define KEYS 40000

struct sink {
	uint8_t *buf;
	size_t len, cap;
};

static int collect(void *arg, const uint8_t *bytes, size_t len)
{
	struct sink *s = arg;
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->buf = realloc(s->buf, s->cap);
		if (s->buf == NULL)
			return -1;
	}
	memcpy(s->buf + s->len, bytes, len);
	s->len += len;
	return 0;
}

/* Keys from..to of the big bucket; a leaf break before key brk. */
static int put_keys(struct bbolt_writer *w, bool dry, int from, int to, int brk)
{
	static uint8_t big[10000];
	memset(big, 'v', sizeof(big));
	int rv = DB_OK;
	for (int i = from; i < to && rv == DB_OK; i++) {
		char k[16];
		int n = snprintf(k, sizeof(k), "k%08d", i);
		size_t vl = i % 997 == 0 ? sizeof(big) : (size_t)(i % 300);
		if (i == brk)
			rv = bbolt_leaf_break(w);
		if (rv == DB_OK)
			rv = bbolt_put(w, (const uint8_t *)k, (size_t)n, dry ? NULL : big, vl);
	}
	return rv;
}

/* The same buckets every time; dry: sizes only, no values. With parts (a
 * dry run), keys from brk on are laid out by a second writer and appended. */
static int fill_split(struct bbolt_writer *w, bool dry, int brk, bool parts)
{
	int rv = bbolt_bucket_begin(w, "key");
	if (rv == DB_OK)
		rv = put_keys(w, dry, 0, parts ? brk : KEYS, brk);
	if (rv == DB_OK && parts) {
		struct bbolt_writer *p;
		REQUIRE(bbolt_writer_open_sink(NULL, NULL, &p) == DB_OK);
		rv = bbolt_bucket_begin(p, "key");
		if (rv == DB_OK)
			rv = put_keys(p, true, brk, KEYS, -1);
		if (rv == DB_OK)
			rv = bbolt_bucket_append(w, p);
		bbolt_writer_free(p);
	}
	if (rv == DB_OK)
		rv = bbolt_bucket_end(w);
	if (rv == DB_OK && (rv = bbolt_bucket_begin(w, "empty")) == DB_OK)
		rv = bbolt_bucket_end(w);
	if (rv == DB_OK && (rv = bbolt_bucket_begin(w, "auth")) == DB_OK) {
		rv = bbolt_put(w, (const uint8_t *)"authEnabled", 11, (const uint8_t *)"\1", 1);
		if (rv == DB_OK)
			rv = bbolt_bucket_end(w);
	}
	return rv;
}

static int fill(struct bbolt_writer *w, bool dry)
{
	return fill_split(w, dry, -1, false);
}

struct count {
	int n;
	size_t bytes;
};

static int count_key(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	(void)k, (void)v;
	struct count *c = arg;
	c->n++;
	c->bytes += kl + vl;
	return 0;
}

/* Write a file of the given pieces to path; how many keys its "key"
 * bucket reads back. */
static int keys_read_back(const char *path, const uint8_t *a, size_t alen, const uint8_t *b,
			  size_t blen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0 && write(fd, a, alen) == (ssize_t)alen);
	REQUIRE(blen == 0 || write(fd, b, blen) == (ssize_t)blen);
	close(fd);
	struct bbolt_reader *r;
	REQUIRE(bbolt_reader_open(path, 0, &r) == DB_OK);
	struct count c = {0};
	CHECK_EQ(bbolt_bucket_scan(r, "key", count_key, &c), DB_OK);
	bbolt_reader_close(r);
	return c.n;
}

static void test_modes_agree(void)
{
	char dir[64], path[128];
	check_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/file.db", dir);
	/* To a file. */
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0);
	struct bbolt_writer *w;
	uint64_t file_size = 0, dry_size = 0, sink_size = 0;
	REQUIRE(bbolt_writer_open(fd, &w) == DB_OK);
	CHECK_EQ(fill(w, false), DB_OK);
	CHECK_EQ(bbolt_writer_finish(w, &file_size), DB_OK);
	bbolt_writer_free(w);
	/* Laid out, then streamed. */
	uint8_t head[BBOLT_HEAD_BYTES];
	REQUIRE(bbolt_writer_open_sink(NULL, NULL, &w) == DB_OK);
	CHECK_EQ(fill(w, true), DB_OK);
	CHECK_EQ(bbolt_writer_finish(w, &dry_size), DB_OK);
	memcpy(head, bbolt_writer_head(w), sizeof(head));
	bbolt_writer_free(w);
	struct sink s = {0};
	REQUIRE(collect(&s, head, sizeof(head)) == 0);
	REQUIRE(bbolt_writer_open_sink(collect, &s, &w) == DB_OK);
	CHECK_EQ(fill(w, false), DB_OK);
	CHECK_EQ(bbolt_writer_finish(w, &sink_size), DB_OK);
	CHECK(memcmp(bbolt_writer_head(w), head, sizeof(head)) == 0);
	bbolt_writer_free(w);
	CHECK_EQ(dry_size, file_size);
	CHECK_EQ(sink_size, file_size);
	CHECK_EQ(s.len, file_size);
	CHECK(file_size > 100 * BBOLT_PAGE_SIZE);
	uint8_t *f = malloc(file_size);
	REQUIRE(f != NULL && pread(fd, f, file_size, 0) == (ssize_t)file_size);
	CHECK(s.len == file_size && memcmp(f, s.buf, file_size) == 0);
	close(fd);
	/* What was streamed reads back. */
	snprintf(path, sizeof(path), "%s/streamed.db", dir);
	CHECK_EQ(keys_read_back(path, f, file_size, NULL, 0), KEYS);
	struct bbolt_reader *r;
	REQUIRE(bbolt_reader_open(path, 0, &r) == DB_OK);
	struct count e = {0};
	CHECK_EQ(bbolt_bucket_scan(r, "empty", count_key, &e), DB_OK);
	CHECK_EQ(e.n, 0);
	CHECK_EQ(bbolt_bucket_scan(r, "auth", count_key, &e), DB_OK);
	CHECK_EQ(e.n, 1);
	bbolt_reader_close(r);
	free(f);
	free(s.buf);
	check_rmdir(dir);
}

static int refuse(void *arg, const uint8_t *bytes, size_t len)
{
	(void)arg, (void)bytes, (void)len;
	return 42;
}

static void test_emit_error(void)
{
	struct bbolt_writer *w;
	REQUIRE(bbolt_writer_open_sink(refuse, NULL, &w) == DB_OK);
	int rv = fill(w, false);
	if (rv == DB_OK)
		rv = bbolt_writer_finish(w, &(uint64_t){0});
	CHECK_EQ(rv, 42);
	bbolt_writer_free(w);
}

/* Laid out in two parts (the backup's halves), then made in one run that
 * breaks a leaf where they meet: the same file, which reads back whole.
 * Splits: inside, at the first key (nothing before), past the last
 * (nothing after: no break). */
static void test_parts_agree(void)
{
	const int splits[] = {KEYS / 3, 0, KEYS};
	uint64_t plain = 0;
	struct bbolt_writer *w;
	REQUIRE(bbolt_writer_open_sink(NULL, NULL, &w) == DB_OK);
	CHECK_EQ(fill(w, true), DB_OK);
	CHECK_EQ(bbolt_writer_finish(w, &plain), DB_OK);
	bbolt_writer_free(w);
	for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
		int brk = splits[i];
		uint64_t laid = 0, made = 0;
		uint8_t head[BBOLT_HEAD_BYTES];
		REQUIRE(bbolt_writer_open_sink(NULL, NULL, &w) == DB_OK);
		CHECK_EQ(fill_split(w, true, brk, true), DB_OK);
		CHECK_EQ(bbolt_writer_finish(w, &laid), DB_OK);
		memcpy(head, bbolt_writer_head(w), sizeof(head));
		bbolt_writer_free(w);
		struct sink s = {0};
		REQUIRE(bbolt_writer_open_sink(collect, &s, &w) == DB_OK);
		CHECK_EQ(fill_split(w, false, brk, false), DB_OK);
		CHECK_EQ(bbolt_writer_finish(w, &made), DB_OK);
		CHECK(memcmp(bbolt_writer_head(w), head, sizeof(head)) == 0);
		bbolt_writer_free(w);
		CHECK_EQ(laid, made);
		CHECK_EQ(s.len + BBOLT_HEAD_BYTES, made);
		/* a break inside costs at most the page it cut short */
		CHECK(made >= plain && made <= plain + BBOLT_PAGE_SIZE);
		if (brk == 0 || brk == KEYS)
			CHECK_EQ(made, plain);
		char dir[64], path[128];
		check_tmpdir(dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/parts.db", dir);
		CHECK_EQ(keys_read_back(path, head, sizeof(head), s.buf, s.len), KEYS);
		check_rmdir(dir);
		free(s.buf);
	}
	/* A part whose keys do not follow is refused; so is a part that is
	 * not a dry run. */
	struct bbolt_writer *p;
	REQUIRE(bbolt_writer_open_sink(NULL, NULL, &w) == DB_OK);
	REQUIRE(bbolt_writer_open_sink(NULL, NULL, &p) == DB_OK);
	CHECK_EQ(bbolt_bucket_begin(w, "key"), DB_OK);
	CHECK_EQ(bbolt_bucket_begin(p, "key"), DB_OK);
	CHECK_EQ(put_keys(w, true, 100, 200, -1), DB_OK);
	CHECK_EQ(put_keys(p, true, 150, 300, -1), DB_OK);
	CHECK_EQ(bbolt_bucket_append(w, p), DB_INVALID);
	bbolt_writer_free(p);
	REQUIRE(bbolt_writer_open_sink(refuse, NULL, &p) == DB_OK);
	CHECK_EQ(bbolt_bucket_begin(p, "key"), DB_OK);
	CHECK_EQ(bbolt_bucket_append(w, p), DB_INVALID);
	bbolt_writer_free(p);
	bbolt_writer_free(w);
}

int main(void)
{
	test_modes_agree();
	test_parts_agree();
	test_emit_error();
	return check_done("test_bbolt");
}

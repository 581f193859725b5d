/*
 * storage/bbolt.h — writing a file in bbolt's format (the Go B+tree store
 * etcd keeps its backend in), so metad can hand out snapshots that etcdctl
 * and etcd open as their own.
 *
 * The writer streams: buckets are written one after another, each bucket's
 * keys in ascending byte order, leaves first and branch pages once a
 * bucket ends; the root bucket, the (empty) freelist and the two meta pages
 * come last. Layout (bbolt's file format, version 2): 4096-byte pages; page
 * 0 and 1 meta, page 2 freelist, data from page 3. Storage knows no wire
 * format: keys and values are opaque bytes here.
 */
#ifndef METAD_STORAGE_BBOLT_H
#define METAD_STORAGE_BBOLT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bbolt_writer;

#define BBOLT_PAGE_SIZE 4096

/* Write to fd (positioned writes from offset 0). DB_OK or DB_NOMEM. */
int bbolt_writer_open(int fd, struct bbolt_writer **out);

/*
 * Stream instead: every page from page 3 on goes to emit(arg, bytes, len)
 * as it is made, in file order (ids only grow), and the first three pages
 * (meta, meta, freelist), which depend on the rest, are kept for
 * bbolt_writer_head once finished. A non-zero emit return stops the writer
 * and is returned. With emit NULL nothing is built (values may be NULL):
 * a dry run that only lays the file out, so that a second run over the
 * same keys and value sizes can send the head before the pages.
 */
typedef int (*bbolt_emit_fn)(void *arg, const uint8_t *bytes, size_t len);
#define BBOLT_HEAD_BYTES (3 * BBOLT_PAGE_SIZE)
int bbolt_writer_open_sink(bbolt_emit_fn emit, void *arg, struct bbolt_writer **out);
/* Pages 0-2 (BBOLT_HEAD_BYTES), valid after bbolt_writer_finish in sink
 * mode. Borrowed from w. */
const uint8_t *bbolt_writer_head(const struct bbolt_writer *w);
/* Start a top-level bucket (names: any order, each once; at most 64). */
int bbolt_bucket_begin(struct bbolt_writer *w, const char *name);
/* Add a key (strictly ascending within the bucket) and its value. Borrowed.
 * DB_INVALID for a key out of order, DB_IO when writing fails. */
int bbolt_put(struct bbolt_writer *w, const uint8_t *key, size_t key_len, const uint8_t *val,
	      size_t val_len);
int bbolt_bucket_end(struct bbolt_writer *w);
/* End the leaf being filled here, so the next key starts a page (a no-op
 * on an empty leaf). Runs that break at the same keys lay out alike. */
int bbolt_leaf_break(struct bbolt_writer *w);
/*
 * Laying out in parts: part, a dry run opened like any other and inside a
 * bucket, holds keys that follow w's in the same bucket; its leaves join
 * w's, after a leaf break in w (none when part is empty). A run that puts
 * the same keys and breaks where the parts meet lays out the same file.
 * Dry runs only (DB_INVALID otherwise); part is left to be freed.
 */
int bbolt_bucket_append(struct bbolt_writer *w, struct bbolt_writer *part);

/* Write the root bucket, freelist and meta pages; *size gets the file size. */
int bbolt_writer_finish(struct bbolt_writer *w, uint64_t *size);
void bbolt_writer_free(struct bbolt_writer *w); /* NULL is allowed */

/* ---- reading (bbolt_read.c) ---- */
struct bbolt_reader;
/* Map the file at path (its first limit bytes if limit > 0: a snapshot's
 * SHA-256 trailer is not part of the database). DB_IO, DB_CORRUPT (no
 * valid meta page) or DB_NOMEM. */
int bbolt_reader_open(const char *path, size_t limit, struct bbolt_reader **out);
void bbolt_reader_close(struct bbolt_reader *r); /* NULL is allowed */
/* Called for each key of a bucket in key order (borrowed bytes); non-zero
 * stops the scan and is returned. */
typedef int (*bbolt_read_fn)(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
			     size_t val_len);
/* Every key of the top-level bucket named bucket: DB_OK, DB_NOTFOUND (no
 * such bucket), DB_CORRUPT or fn's value. */
int bbolt_bucket_scan(struct bbolt_reader *r, const char *bucket, bbolt_read_fn fn, void *arg);

#endif

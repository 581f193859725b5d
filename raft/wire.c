/*
 * raft/wire.c — nanopb encoding of messages and log records (raft.proto).
 * Payloads are never copied field by field: the encoder streams them from
 * the entries, the decoder copies the whole input once into a batch and
 * points entries into it. Every length is checked against the input, so
 * hostile bytes yield RAFT_CORRUPT, never a crash or an unbounded allocation.
 */
#include <pb_decode.h>
#include <pb_encode.h>
#include <string.h>

#include "raft/conf.h"
#include "raft/heap.h"
#include "raft/raft.pb.h"

struct span {
	const uint8_t *p;
	size_t n;
	const uint8_t *lo, *hi; /* decoding: the input buffer */
};

static bool encSpan(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
	const struct span *sp = *arg;
	if (sp->n == 0) {
		return true; /* proto3: empty bytes are omitted */
	}
	return pb_encode_tag_for_field(s, f) && pb_encode_string(s, sp->p, sp->n);
}

/* Note where the bytes are (inside the caller's buffer) instead of copying. */
static bool decSpan(pb_istream_t *s, const pb_field_t *f, void **arg)
{
	(void)f;
	struct span *sp = *arg;
	const uint8_t *p = (const uint8_t *)s->state;
	size_t n = s->bytes_left;
	/* nanopb hands a bytes field given a non-length wire type over in a
	 * temporary buffer of its own: only pointers into our input are kept. */
	if (p < sp->lo || p > sp->hi || n > (size_t)(sp->hi - p)) {
		return false;
	}
	sp->p = p;
	sp->n = n;
	return pb_read(s, NULL, n);
}

static void confToPb(const struct raft_conf *c, metadraft_ConfState *pb)
{
	pb->voters_count = (pb_size_t)c->n_voters;
	memcpy(pb->voters, c->voters, c->n_voters * sizeof(uint64_t));
	pb->learners_count = (pb_size_t)c->n_learners;
	memcpy(pb->learners, c->learners, c->n_learners * sizeof(uint64_t));
}

static int confFromPb(const metadraft_ConfState *pb, struct raft_conf *c)
{
	memset(c, 0, sizeof(*c));
	if (pb->voters_count > RAFT_MAX_MEMBERS || pb->learners_count > RAFT_MAX_MEMBERS) {
		return RAFT_CORRUPT;
	}
	c->n_voters = pb->voters_count;
	memcpy(c->voters, pb->voters, c->n_voters * sizeof(uint64_t));
	c->n_learners = pb->learners_count;
	memcpy(c->learners, pb->learners, c->n_learners * sizeof(uint64_t));
	return confValid(c) ? 0 : RAFT_CORRUPT;
}

static bool encEntries(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
	const struct raft_message *m = *arg;
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		struct span sp = {e->data, e->len, NULL, NULL};
		metadraft_Entry pe = metadraft_Entry_init_zero;
		pe.term = e->term;
		pe.index = e->index;
		pe.type = e->type;
		pe.data.funcs.encode = encSpan;
		pe.data.arg = &sp;
		if (!pb_encode_tag_for_field(s, f) || !pb_encode_submessage(s, metadraft_Entry_fields, &pe)) {
			return false;
		}
	}
	return true;
}

static void msgToPb(const struct raft_message *m, metadraft_Message *pb, struct span *snap)
{
	*pb = (metadraft_Message)metadraft_Message_init_zero;
	pb->type = m->type;
	pb->to = m->to;
	pb->from = m->from;
	pb->term = m->term;
	pb->log_term = m->log_term;
	pb->index = m->index;
	pb->commit = m->commit;
	pb->reject = m->reject;
	pb->reject_hint = m->reject_hint;
	pb->context = m->context;
	if (m->n_entries > 0) {
		pb->entries.funcs.encode = encEntries;
		pb->entries.arg = (void *)m;
	}
	if (m->type == RAFT_MSG_SNAP) {
		pb->has_snapshot = true;
		pb->snapshot.index = m->snapshot.meta.index;
		pb->snapshot.term = m->snapshot.meta.term;
		pb->snapshot.has_conf = true;
		confToPb(&m->snapshot.meta.conf, &pb->snapshot.conf);
		snap->p = m->snapshot.data;
		snap->n = m->snapshot.len;
		pb->snapshot_data.funcs.encode = encSpan;
		pb->snapshot_data.arg = snap;
	}
}

int raft_msg_encoded_size(const struct raft_message *m, size_t *size)
{
	metadraft_Message pb;
	struct span snap;
	msgToPb(m, &pb, &snap);
	if (!pb_get_encoded_size(size, metadraft_Message_fields, &pb)) {
		return RAFT_INVALID;
	}
	return 0;
}

int raft_msg_encode(const struct raft_message *m, uint8_t *buf, size_t cap, size_t *len)
{
	metadraft_Message pb;
	struct span snap;
	msgToPb(m, &pb, &snap);
	pb_ostream_t os = pb_ostream_from_buffer(buf, cap);
	if (!pb_encode(&os, metadraft_Message_fields, &pb)) {
		return RAFT_TOOBIG;
	}
	*len = os.bytes_written;
	return 0;
}

/* The twin of encodePlain for messages without callbacks. */
static int decodePlain(const pb_msgdesc_t *fields, void *dst, const uint8_t *buf, size_t len)
{
	pb_istream_t is = pb_istream_from_buffer(buf, len);
	return pb_decode(&is, fields, dst) ? 0 : RAFT_CORRUPT;
}

struct decState {
	struct raft_message *m;
	size_t cap;
	struct raft_batch *batch;
	const uint8_t *lo, *hi;
	int rv;
};

static bool decEntry(pb_istream_t *s, const pb_field_t *f, void **arg)
{
	(void)f;
	struct decState *st = *arg;
	struct raft_message *m = st->m;
	if (m->n_entries >= RAFT_WIRE_MAX_ENTRIES) {
		st->rv = RAFT_TOOBIG;
		return false;
	}
	if (m->n_entries == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 8;
		struct raft_entry *e = raftRealloc(m->entries, cap * sizeof(*e));
		if (e == NULL) {
			st->rv = RAFT_NOMEM;
			return false;
		}
		m->entries = e;
		st->cap = cap;
	}
	struct span sp = {NULL, 0, st->lo, st->hi};
	metadraft_Entry pe = metadraft_Entry_init_zero;
	pe.data.funcs.decode = decSpan;
	pe.data.arg = &sp;
	if (!pb_decode(s, metadraft_Entry_fields, &pe)) {
		return false;
	}
	m->entries[m->n_entries++] = (struct raft_entry){.term = pe.term,
							 .index = pe.index,
							 .type = pe.type,
							 .len = (uint32_t)sp.n,
							 .data = sp.n ? sp.p : NULL,
							 .batch = st->batch};
	return true;
}

int raft_msg_decode(const uint8_t *buf, size_t len, struct raft_message *m)
{
	memset(m, 0, sizeof(*m));
	if (len > RAFT_WIRE_MAX_MSG) {
		return RAFT_TOOBIG;
	}
	uint8_t *copy;
	struct raft_batch *b = raft_batch_new(len, &copy);
	if (b == NULL) {
		return RAFT_NOMEM;
	}
	if (len > 0) {
		memcpy(copy, buf, len);
	}
	struct decState st = {.m = m, .batch = b, .lo = copy, .hi = copy + len, .rv = RAFT_CORRUPT};
	struct span snap = {NULL, 0, copy, copy + len};
	metadraft_Message pb = metadraft_Message_init_zero;
	pb.entries.funcs.decode = decEntry;
	pb.entries.arg = &st;
	pb.snapshot_data.funcs.decode = decSpan;
	pb.snapshot_data.arg = &snap;
	pb_istream_t is = pb_istream_from_buffer(copy, len);
	int rv = 0;
	if (!pb_decode(&is, metadraft_Message_fields, &pb)) {
		rv = st.rv;
		goto err;
	}
	m->type = pb.type;
	m->to = pb.to;
	m->from = pb.from;
	m->term = pb.term;
	m->log_term = pb.log_term;
	m->index = pb.index;
	m->commit = pb.commit;
	m->reject = pb.reject;
	m->reject_hint = pb.reject_hint;
	m->context = pb.context;
	if (pb.has_snapshot) {
		m->snapshot.meta.index = pb.snapshot.index;
		m->snapshot.meta.term = pb.snapshot.term;
		if (confFromPb(&pb.snapshot.conf, &m->snapshot.meta.conf) != 0) {
			rv = RAFT_CORRUPT;
			goto err;
		}
		m->snapshot.data = snap.n ? snap.p : NULL;
		m->snapshot.len = snap.n;
		m->snapshot.batch = b;
		raft_batch_ref(b);
	}
	raft_entries_ref(m->entries, m->n_entries);
	raft_batch_unref(b);
	return 0;
err:
	raftFree(m->entries);
	memset(m, 0, sizeof(*m));
	raft_batch_unref(b);
	return rv;
}

int raft_entry_encode(const struct raft_entry *e, uint8_t *buf, size_t cap, size_t *len)
{
	struct span sp = {e->data, e->len, NULL, NULL};
	metadraft_Entry pe = metadraft_Entry_init_zero;
	pe.term = e->term;
	pe.index = e->index;
	pe.type = e->type;
	pe.data.funcs.encode = encSpan;
	pe.data.arg = &sp;
	pb_ostream_t os = pb_ostream_from_buffer(buf, cap);
	if (!pb_encode(&os, metadraft_Entry_fields, &pe)) {
		return RAFT_TOOBIG;
	}
	*len = os.bytes_written;
	return 0;
}

int raft_entry_decode(const uint8_t *buf, size_t len, struct raft_entry *e)
{
	if (buf == NULL && len > 0) {
		return RAFT_CORRUPT;
	}
	struct span sp = {NULL, 0, buf, buf ? buf + len : NULL};
	metadraft_Entry pe = metadraft_Entry_init_zero;
	pe.data.funcs.decode = decSpan;
	pe.data.arg = &sp;
	pb_istream_t is = pb_istream_from_buffer(buf, len);
	if (!pb_decode(&is, metadraft_Entry_fields, &pe) || sp.n > UINT32_MAX) {
		return RAFT_CORRUPT;
	}
	*e = (struct raft_entry){.term = pe.term,
				 .index = pe.index,
				 .type = pe.type,
				 .len = (uint32_t)sp.n,
				 .data = sp.n ? sp.p : NULL};
	return 0;
}

static int encodePlain(const pb_msgdesc_t *fields, const void *src, uint8_t *buf, size_t cap,
		       size_t *len)
{
	pb_ostream_t os = pb_ostream_from_buffer(buf, cap);
	if (!pb_encode(&os, fields, src)) {
		return RAFT_TOOBIG;
	}
	*len = os.bytes_written;
	return 0;
}

int raft_hard_state_encode(const struct raft_hard_state *hs, uint8_t *buf, size_t cap, size_t *len)
{
	metadraft_HardState pb = {hs->term, hs->vote, hs->commit};
	return encodePlain(metadraft_HardState_fields, &pb, buf, cap, len);
}

int raft_hard_state_decode(const uint8_t *buf, size_t len, struct raft_hard_state *hs)
{
	metadraft_HardState pb = metadraft_HardState_init_zero;
	if (decodePlain(metadraft_HardState_fields, &pb, buf, len) != 0) {
		return RAFT_CORRUPT;
	}
	*hs = (struct raft_hard_state){pb.term, pb.vote, pb.commit};
	return 0;
}

int raft_snapshot_meta_encode(const struct raft_snapshot_meta *m, uint8_t *buf, size_t cap,
			      size_t *len)
{
	metadraft_SnapshotMeta pb = metadraft_SnapshotMeta_init_zero;
	pb.index = m->index;
	pb.term = m->term;
	pb.has_conf = true;
	confToPb(&m->conf, &pb.conf);
	return encodePlain(metadraft_SnapshotMeta_fields, &pb, buf, cap, len);
}

int raft_snapshot_meta_decode(const uint8_t *buf, size_t len, struct raft_snapshot_meta *m)
{
	metadraft_SnapshotMeta pb = metadraft_SnapshotMeta_init_zero;
	if (decodePlain(metadraft_SnapshotMeta_fields, &pb, buf, len) != 0) {
		return RAFT_CORRUPT;
	}
	m->index = pb.index;
	m->term = pb.term;
	return confFromPb(&pb.conf, &m->conf);
}

int raft_conf_change_encode(const struct raft_conf_change *cc, uint8_t *buf, size_t cap,
			    size_t *len)
{
	metadraft_ConfChange pb = metadraft_ConfChange_init_zero;
	pb.type = cc->type;
	pb.node_id = cc->node_id;
	pb.has_result = true;
	confToPb(&cc->result, &pb.result);
	return encodePlain(metadraft_ConfChange_fields, &pb, buf, cap, len);
}

int raft_conf_change_decode(const uint8_t *buf, size_t len, struct raft_conf_change *cc)
{
	metadraft_ConfChange pb = metadraft_ConfChange_init_zero;
	if (buf == NULL && len > 0) {
		return RAFT_CORRUPT;
	}
	if (decodePlain(metadraft_ConfChange_fields, &pb, buf, len) != 0) {
		return RAFT_CORRUPT;
	}
	cc->type = pb.type;
	cc->node_id = pb.node_id;
	int rv = confFromPb(&pb.result, &cc->result);
	if (rv == 0 && cc->result.n_voters == 0) {
		rv = RAFT_CORRUPT; /* a configuration without voters can never decide */
	}
	return rv;
}

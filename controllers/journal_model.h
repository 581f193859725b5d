/*
 * controllers/journal_model.h — a journal segment as the controller sees it
 * (parsed from and written to its JSON value), the state machine's edges,
 * leader failover and recovery choices, and the rebalance rate limit. Pure
 * functions: no core, no clock of their own (unit-tested).
 */
#ifndef METAD_CONTROLLERS_JOURNAL_MODEL_H
#define METAD_CONTROLLERS_JOURNAL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSEG_MAX_REPLICAS 8
#define JSEG_ID_MAX 128

enum jstate {
	JS_NONE = 0,
	JS_WRITE,
	JS_PRESEALUP,
	JS_SEALUP,
	JS_PREDELETE,
	JS_DELETING,
	JS_UNAVAILABLE,
};

struct jseg {
	enum jstate state, prev_state; /* prev_state: the state Unavailable left */
	size_t n_rep;
	char rep[JSEG_MAX_REPLICAS][JSEG_ID_MAX];
	int64_t epoch[JSEG_MAX_REPLICAS];
	size_t n_isr;
	uint8_t isr[JSEG_MAX_REPLICAS]; /* indexes into rep, in ISR order */
	int leader;    /* index into rep; -1: none */
	int preferred; /* index into rep; -1: none */
};

const char *jstate_name(enum jstate s);
enum jstate jstate_parse(const char *name); /* JS_NONE if unknown */
/* Whether a requested change from -> to is one of the accepted edges
 * (Write -> PreSealUp -> SealUp -> PreDelete -> Deleting). */
bool jstate_edge_ok(enum jstate from, enum jstate to);

/* Parse a segment value; 0, or -1 if it is not a valid segment. */
int jseg_parse(const char *json, size_t len, struct jseg *out);
/* Its JSON value (malloc'd, the caller's), or NULL when out of memory. */
char *jseg_dump(const struct jseg *s);
/* Index of id in s->rep, or -1. */
int jseg_find(const struct jseg *s, const char *id);
bool jseg_in_isr(const struct jseg *s, int rep);

typedef bool (*jalive_fn)(void *arg, const char *id, int64_t epoch);
/*
 * Node id is gone: it leaves the ISR; if it led, the first member of the
 * remaining ISR that alive() accepts leads, else the segment becomes
 * Unavailable with no leader (never an unclean election). Returns whether
 * the segment changed.
 */
bool jseg_fail_node(struct jseg *s, const char *id, jalive_fn alive, void *arg);
/*
 * Recovery of an Unavailable segment: among the replicas alive() accepts,
 * the one with the highest leo[i] (log end offsets by replica index; -1 =
 * unknown) leads, alone in the ISR, and the state returns to prev_state.
 * Returns whether it recovered.
 */
bool jseg_recover(struct jseg *s, const int64_t *leo, jalive_fn alive, void *arg);
/* Preferred leader alive and in the ISR but not leading: make it lead. */
bool jseg_prefer(struct jseg *s, jalive_fn alive, void *arg);
/* Whether isr (ids) is a valid new ISR for s with leader id: non-empty,
 * no repeats, all replicas, containing the leader. Fills idx. */
bool jseg_isr_ok(const struct jseg *s, const char *leader, const char *const *isr, size_t n,
		 uint8_t *idx);

/* At most per_minute events per minute, bursts up to per_minute. */
struct jbucket {
	double tokens;
	int64_t last_ms;
	bool started;
};
bool jbucket_take(struct jbucket *b, int64_t now_ms, int per_minute);

#endif

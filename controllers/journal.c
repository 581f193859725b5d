/*
 * controllers/journal.c — the journal controller (docs/controllers.md): not yet
 * acting; it only claims its prefix.
 */
#include <stdlib.h>

#include "controllers/ctl_internal.h"

static int journal_start(struct ctl *rt, void **state)
{
	(void)rt;
	*state = calloc(1, 1);
	return *state != NULL ? 0 : -1;
}

static void journal_event(struct ctl *rt, void *state, const struct ctl_event *ev)
{
	(void)rt;
	(void)state;
	(void)ev;
}

static void journal_stop(struct ctl *rt, void *state)
{
	(void)rt;
	free(state);
}

const struct ctl_ops ctl_journal_ops = {
	.name = "journal",
	.prefixes = {"journal/", NULL},
	.start = journal_start,
	.event = journal_event,
	.stop = journal_stop,
};

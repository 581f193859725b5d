/*
 * core/auth_stamp.c — a client's write carries who it was checked as.
 *
 * Permission checks run when a request arrives, on the thread that serves
 * it; the write is applied later (after other writes, possibly after an
 * auth change). The checking thread records the identity and the auth
 * revision it checked at; writer_submit stamps them into the log entry; and
 * apply checks the entry again (auth_recheck.c).
 */
#include <string.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"

static _Thread_local bool have;
static _Thread_local uint64_t caller_rev;
static _Thread_local char caller[CORE_AUTH_USER_MAX];

uint64_t core_auth_revision(struct core *c)
{
	return atomic_load(&c->auth->revision);
}

void core_auth_caller_begin(const char *user, uint64_t rev)
{
	size_t n = user ? strlen(user) : 0;
	if (n >= sizeof(caller))
		n = 0; /* cannot be a stored user's token: checks refused it */
	memcpy(caller, user, n);
	caller[n] = 0;
	caller_rev = rev;
	have = true;
}

void core_auth_caller_end(void)
{
	have = false;
}

void core_auth_caller_take(struct core_auth_caller *who)
{
	who->set = have;
	who->rev = caller_rev;
	memcpy(who->user, caller, sizeof(caller));
	have = false;
}

void core_auth_caller_resume(const struct core_auth_caller *who)
{
	if (who->set)
		core_auth_caller_begin(who->user, who->rev);
}

void auth_stamp(Metadpb__InternalRequest *ir)
{
	if (!have)
		return;
	have = false;
	ir->auth_user = caller;
	ir->auth_revision = caller_rev;
}

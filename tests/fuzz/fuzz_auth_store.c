/*
 * tests/fuzz/fuzz_auth_store.c — any bytes as a stored auth record (the
 * auth table is read back at every start): users and roles decode or are
 * refused, and what decodes packs and decodes again to the same thing.
 * Also the records' range checks on whatever a role decodes to.
 */
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_user *u = auth_user_unpack(data, size);
	if (u != NULL) {
		size_t len;
		uint8_t *b = auth_user_pack(u, &len);
		struct auth_user *v = b ? auth_user_unpack(b, len) : NULL;
		if (b != NULL && (v == NULL || strcmp(u->name, v->name) != 0 ||
				  u->n_roles != v->n_roles || u->no_password != v->no_password))
			abort();
		free(b);
		auth_user_free(v);
		auth_user_free(u);
	}
	struct auth_role *r = auth_role_unpack(data, size);
	if (r != NULL) {
		size_t len;
		uint8_t *b = auth_role_pack(r, &len);
		struct auth_role *q = b ? auth_role_unpack(b, len) : NULL;
		if (b != NULL && (q == NULL || q->n_perms != r->n_perms))
			abort();
		free(b);
		auth_role_free(q);
		/* Each of the role's own ranges as a request: no crash, whatever
		 * bytes the keys hold. */
		struct core *c = fuzz_core();
		for (size_t i = 0; i < r->n_perms; i++)
			(void)core_auth_check_range(c, "alice", CORE_PERM_READ, r->perms[i].key,
						    r->perms[i].key_len, r->perms[i].end,
						    r->perms[i].end_len);
		auth_role_free(r);
	}
	return 0;
}

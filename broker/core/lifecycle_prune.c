/*
 * lifecycle_prune: retention as a transition — the database side of
 * `toolgatectl audit prune`, in the caller's transaction, after the
 * archive was written (audit_prune.h): record the cut and forget the
 * records up to it, the intents that are over, the replay rows past their
 * use, and say so in one "audit.prune" record.  Nothing still needed
 * goes: the cut was planned to keep it, and only intents that are over
 * are removed.
 */
#include "clock.h"
#include "lifecycle_impl.h"

enum reason
lc_prune(struct decider *d, const struct audit_cut *cut, int64_t archived,
    int64_t before, const char *actor, int64_t now, int64_t *intents)
{
	struct store	*s = d->store;
	json_t		*det;
	char		 at[RFC3339_LEN];
	enum reason	 rc;

	*intents = 0;
	if (s->ops->audit_prune(s, cut) == -1 ||
	    s->ops->intents_prune(s, before, intents) == -1 ||
	    s->ops->jti_prune(s, now) == -1)
		return (E_UNAVAILABLE);
	clock_rfc3339(before, at);
	if ((det = json_pack("{ss sI ss sI sI}", "before", at, "cut",
	    (json_int_t)cut->seq, "cut_hash", cut->hash, "archived",
	    (json_int_t)archived, "intents", (json_int_t)*intents)) == NULL)
		return (E_UNAVAILABLE);
	rc = lc_audit(d, now, actor, "audit.prune", NULL, det);
	json_decref(det);
	return (rc);
}

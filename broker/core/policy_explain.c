/*
 * policy_explain: what policy explain shows of a rule beyond the
 * decision (CONTRACT §8.4) — each of its conditions on args and whether
 * the call meets it.  Pure: reads the snapshot and the call's args.
 */
#include <string.h>

#include <jansson.h>

#include "policy.h"
#include "policy_impl.h"

json_t *
policy_rule_conditions(const struct policy *p, const char *role,
    int rule_index, const json_t *args)
{
	const struct role	*ro;
	const struct rule	*ru;
	struct cond_failure	 why;
	enum cond_result	 r;
	json_t			*list, *o;
	size_t			 i;

	if (p == NULL || role == NULL || rule_index < 0 ||
	    (ro = htab_get(&p->roles, role, strlen(role))) == NULL ||
	    (size_t)rule_index >= ro->n_rules)
		return (json_array());
	ru = &ro->rules[rule_index];
	if ((list = json_array()) == NULL)
		return (NULL);
	for (i = 0; i < ru->n_conds; i++) {
		memset(&why, 0, sizeof(why));
		r = policy_conds_check(&ru->conds[i], 1, args, &why);
		o = json_pack("{ss sb so}", "pointer", ru->conds[i].pointer,
		    "holds", r == COND_HOLDS, "condition", r == COND_FAILS ?
		    json_string(policy_cond_key_name(why.key)) : json_null());
		if (o == NULL || json_array_append_new(list, o) == -1) {
			json_decref(list);
			return (NULL);
		}
	}
	return (list);
}

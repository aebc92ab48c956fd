/*
 * policy: the policy snapshot of CONTRACT §5 and §8 — built from a
 * document that policy_validate.c accepted, then evaluated: a call
 * (principal, tool, args, amount claim) → outcome, the limits that apply
 * to a call, and the role questions the API asks (operator? approver? may
 * redeem?).  What a rule reads in args (amounts, conditions, usage keys)
 * is policy_args.c's; what policy check warns about is policy_warn.c's.
 *
 * It does no I/O, keeps no clock, never logs and never touches SQLite; the
 * caller decides where the text comes from and what a decision leads to.
 * A snapshot holds no jansson objects: everything lives in one arena owned
 * by struct policy, is written only inside policy_parse and afterwards only
 * read, so any number of threads may evaluate against it without locks.
 *
 * Speed: principals and roles are found through hash tables; every role
 * indexes its rules by exact tool name and by "prefix.*" prefix, so
 * evaluating "a.b.c" looks up "a.b.c", "a" and "a.b" in the principal's
 * roles instead of scanning every rule.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "amount.h"
#include "arena.h"
#include "policy.h"
#include "policy_impl.h"
#include "reason.h"


/* ---- names and patterns ---- */

static int
tool_char(char c, int upper)
{
	return ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '_' || c == '-' || (upper && c >= 'A' && c <= 'Z'));
}

/* Dotted segments of tool_char, 1..POLICY_MAX_TOOL bytes. */
static int
tool_name_validn(const char *s, size_t len, int upper)
{
	size_t	 i;
	int	 seg = 0;

	if (len == 0 || len > POLICY_MAX_TOOL)
		return (0);
	for (i = 0; i < len; i++) {
		if (tool_char(s[i], upper))
			seg++;
		else if (s[i] == '.' && seg > 0)
			seg = 0;
		else
			return (0);
	}
	return (seg > 0);
}

int
policy_tool_name_validn(const char *s, size_t len)
{
	return (tool_name_validn(s, len, 0));
}

int
policy_tool_name_valid(const char *s)
{
	if (s == NULL)
		return (0);
	return (policy_tool_name_validn(s, strnlen(s, POLICY_MAX_TOOL + 1)));
}

int
policy_mcp_name_valid(const char *s)
{
	if (s == NULL)
		return (0);
	return (tool_name_validn(s, strnlen(s, POLICY_MAX_TOOL + 1), 1));
}

/* 1 if s is an exact tool name or "prefix.*" with a valid prefix, in the
 * grammar widened for MCP names (CONTRACT §9): a rule may name pay.GetUser. */
int
policy_pattern_valid(const char *s, size_t len)
{
	if (len > 2 && s[len - 2] == '.' && s[len - 1] == '*')
		return (tool_name_validn(s, len - 2, 1));
	return (tool_name_validn(s, len, 1));
}

int
policy_pattern_match(const char *pattern, const char *tool)
{
	size_t	 plen;

	if (pattern == NULL || tool == NULL)
		return (0);
	plen = strlen(pattern);
	if (plen >= 2 && pattern[plen - 2] == '.' && pattern[plen - 1] == '*')
		return (strncmp(pattern, tool, plen - 1) == 0 &&
		    tool[plen - 1] != '\0');
	return (strcmp(pattern, tool) == 0);
}

/* Principal and role names: 1..256 bytes, no control characters. */
int
policy_name_valid(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > POLICY_MAX_NAME)
		return (0);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return (0);
	return (1);
}
/* ---- building the snapshot from a validated document ---- */

struct ikey {
	const char	*key;
	size_t		 klen;
	int		 prefix;
	int		 idx;
};

static int
ikey_cmp(const void *a, const void *b)
{
	const struct ikey	*x = a, *y = b;
	size_t			 n = x->klen < y->klen ? x->klen : y->klen;
	int			 c;

	if (x->prefix != y->prefix)
		return (x->prefix - y->prefix);
	if ((c = memcmp(x->key, y->key, n)) != 0)
		return (c);
	if (x->klen != y->klen)
		return (x->klen < y->klen ? -1 : 1);
	return (x->idx - y->idx);
}

/* Index a role's rules by exact tool and by prefix; rule order is kept
 * inside each span. */
static int
b_index(struct policy *p, struct role *ro)
{
	struct ikey	*keys;
	struct span	*sp;
	size_t		 i, j, n = ro->n_rules, nex = 0, npre = 0, len;
	int		 rc = -1;

	if (n == 0)
		return (0);
	if ((keys = calloc(n, sizeof(*keys))) == NULL)
		return (-1);
	if ((ro->idx = arena_calloc(&p->arena, n, sizeof(*ro->idx))) == NULL)
		goto done;
	for (i = 0; i < n; i++) {
		len = strlen(ro->rules[i].tool);
		keys[i].key = ro->rules[i].tool;
		keys[i].idx = (int)i;
		if (len > 2 && ro->rules[i].tool[len - 1] == '*') {
			keys[i].prefix = 1;
			keys[i].klen = len - 2;
		} else
			keys[i].klen = len;
	}
	qsort(keys, n, sizeof(*keys), ikey_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && keys[j].prefix == keys[i].prefix &&
		    keys[j].klen == keys[i].klen &&
		    memcmp(keys[j].key, keys[i].key, keys[i].klen) == 0; j++)
			;
		if (keys[i].prefix)
			npre++;
		else
			nex++;
	}
	if (htab_init(&ro->exact, &p->arena, nex) == -1 ||
	    htab_init(&ro->prefix, &p->arena, npre) == -1)
		goto done;
	for (i = 0; i < n; i++)
		ro->idx[i] = keys[i].idx;
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && keys[j].prefix == keys[i].prefix &&
		    keys[j].klen == keys[i].klen &&
		    memcmp(keys[j].key, keys[i].key, keys[i].klen) == 0; j++)
			;
		if ((sp = arena_alloc(&p->arena, sizeof(*sp))) == NULL)
			goto done;
		sp->start = i;
		sp->n = j - i;
		htab_put(keys[i].prefix ? &ro->prefix : &ro->exact,
		    keys[i].key, keys[i].klen, sp);
	}
	rc = 0;
 done:
	free(keys);
	return (rc);
}

static const char *
b_str(struct policy *p, json_t *j)
{
	return (arena_strndup(&p->arena, json_string_value(j),
	    json_string_length(j)));
}

static int
b_rule(struct policy *p, struct rule *ru, json_t *r)
{
	json_t		*j, *tiers, *t;
	const char	*code;
	struct currency	*c;
	struct tier	*ti;
	size_t		 i, k;

	if ((ru->tool = b_str(p, json_object_get(r, "tool"))) == NULL)
		return (-1);
	j = json_object_get(r, "effect");
	ru->deny = j != NULL && strcmp(json_string_value(j), "deny") == 0;
	j = json_object_get(r, "approvals");
	ru->approvals = j ? (int)json_integer_value(j) : 0;
	ru->max_approvals = ru->approvals;
	j = json_object_get(r, "approval_ttl");
	ru->ttl = j ? (int64_t)json_integer_value(j) : POLICY_DEFAULT_TTL;
	if ((j = json_object_get(r, "amount_from")) != NULL &&
	    policy_build_amount_from(&p->arena, j, &ru->af) == -1)
		return (-1);
	if ((j = json_object_get(r, "args")) != NULL &&
	    policy_build_conds(&p->arena, j, &ru->conds, &ru->n_conds) == -1)
		return (-1);

	if ((j = json_object_get(r, "approvers")) != NULL &&
	    json_array_size(j) > 0) {
		ru->n_approvers = json_array_size(j);
		if ((ru->approvers = arena_calloc(&p->arena, ru->n_approvers,
		    sizeof(*ru->approvers))) == NULL)
			return (-1);
		for (i = 0; i < ru->n_approvers; i++) {
			struct role *ar = htab_get(&p->roles,
			    json_string_value(json_array_get(j, i)),
			    json_string_length(json_array_get(j, i)));
			/* point at the role's own name: one copy */
			ru->approvers[i] = ar->name;
			ar->approver = 1;
		}
	}

	if ((j = json_object_get(r, "currencies")) == NULL)
		return (0);
	ru->n_currencies = json_object_size(j);
	if ((ru->currencies = arena_calloc(&p->arena, ru->n_currencies,
	    sizeof(*ru->currencies))) == NULL)
		return (-1);
	c = ru->currencies;
	json_object_foreach(j, code, tiers) {
		memcpy(c->code, code, 4);
		c->n_tiers = json_array_size(tiers);
		if ((c->tiers = arena_calloc(&p->arena, c->n_tiers,
		    sizeof(*c->tiers))) == NULL)
			return (-1);
		json_array_foreach(tiers, k, t) {
			ti = &c->tiers[k];
			json_t *mx = json_object_get(t, "max");
			if (amount_parse_value(json_string_value(mx),
			    json_string_length(mx), &ti->max) == -1)
				return (-1);
			ti->approvals = (int)json_integer_value(
			    json_object_get(t, "approvals"));
			if (ti->approvals > ru->max_approvals)
				ru->max_approvals = ti->approvals;
			/* Shown to approvers as the policy wrote it. */
			if ((ti->max_text = arena_strndup(&p->arena,
			    json_string_value(mx), json_string_length(mx))) ==
			    NULL)
				return (-1);
		}
		c++;
	}
	return (0);
}

/* An array of strings into the arena; *n its size. */
static int
b_strings(struct policy *p, json_t *arr, const char ***out, size_t *n)
{
	size_t	 i;

	*n = json_array_size(arr);
	*out = NULL;
	if (*n == 0)
		return (0);
	if ((*out = arena_calloc(&p->arena, *n, sizeof(**out))) == NULL)
		return (-1);
	for (i = 0; i < *n; i++)
		if (((*out)[i] = b_str(p, json_array_get(arr, i))) == NULL)
			return (-1);
	return (0);
}

static int
b_limit(struct policy *p, struct policy_limit *l, struct htab *who,
    json_t *j)
{
	static const char *const per_default[] = { "agent" };
	json_t	*v, *over;
	size_t	 i;

	if ((l->name = b_str(p, json_object_get(j, "name"))) == NULL ||
	    b_strings(p, json_object_get(j, "tools"), &l->tools,
	    &l->n_tools) == -1 ||
	    b_strings(p, json_object_get(j, "principals"), &l->principals,
	    &l->n_principals) == -1)
		return (-1);
	if (htab_init(who, &p->arena, l->n_principals) == -1)
		return (-1);
	for (i = 0; i < l->n_principals; i++)
		htab_put(who, l->principals[i], strlen(l->principals[i]),
		    (void *)l->principals[i]);
	if ((v = json_object_get(j, "per")) != NULL) {
		if (b_strings(p, v, &l->per, &l->n_per) == -1)
			return (-1);
	} else {
		l->per = (const char **)per_default;
		l->n_per = 1;
	}
	l->window = json_integer_value(json_object_get(j, "window"));
	if ((v = json_object_get(j, "max_amount")) != NULL) {
		l->by_amount = 1;
		if (amount_parse_value(json_string_value(v),
		    json_string_length(v), &l->max_amount) == -1 ||
		    (l->max_amount_text = b_str(p, v)) == NULL)
			return (-1);
		memcpy(l->max_amount.currency, json_string_value(
		    json_object_get(j, "currency")), 4);
	} else
		l->max_count = json_integer_value(json_object_get(j,
		    "max_count"));
	if ((over = json_object_get(j, "over")) != NULL &&
	    json_is_object(over)) {
		l->over_approvals = (int)json_integer_value(
		    json_object_get(over, "approvals"));
		if (b_strings(p, json_object_get(over, "approvers"),
		    &l->over_approvers, &l->n_over_approvers) == -1)
			return (-1);
	}
	return (0);
}

static int
b_limits(struct policy *p, json_t *arr)
{
	size_t	 i;

	if ((p->n_limits = json_array_size(arr)) == 0)
		return (0);
	if ((p->limits = arena_calloc(&p->arena, p->n_limits,
	    sizeof(*p->limits))) == NULL ||
	    (p->limit_principals = arena_calloc(&p->arena, p->n_limits,
	    sizeof(*p->limit_principals))) == NULL)
		return (-1);
	for (i = 0; i < p->n_limits; i++) {
		p->limits[i].index = i;
		if (b_limit(p, &p->limits[i], &p->limit_principals[i],
		    json_array_get(arr, i)) == -1)
			return (-1);
	}
	return (0);
}

static int
b_document(struct policy *p, json_t *doc)
{
	json_t		*ros, *prs, *red, *j, *rules;
	const char	*k;
	struct role	*ro;
	struct principal *pr;
	struct redact	*rd;
	size_t		 i, n;

	ros = json_object_get(doc, "roles");
	prs = json_object_get(doc, "principals");

	/* Roles first, by name, so that approvers and principals can point
	 * at them. */
	p->n_roles = json_object_size(ros);
	if ((p->role_list = arena_calloc(&p->arena, p->n_roles ? p->n_roles :
	    1, sizeof(*p->role_list))) == NULL ||
	    htab_init(&p->roles, &p->arena, p->n_roles) == -1)
		return (-1);
	ro = p->role_list;
	json_object_foreach(ros, k, j) {
		if ((ro->name = arena_strndup(&p->arena, k, strlen(k))) == NULL)
			return (-1);
		htab_put(&p->roles, ro->name, strlen(ro->name), ro);
		ro++;
	}
	ro = p->role_list;
	json_object_foreach(ros, k, j) {
		ro->operator = json_is_true(json_object_get(j, "operator"));
		if ((rules = json_object_get(j, "redeem")) != NULL &&
		    (n = json_array_size(rules)) > 0) {
			if ((ro->redeem = arena_calloc(&p->arena, n,
			    sizeof(*ro->redeem))) == NULL)
				return (-1);
			for (i = 0; i < n; i++)
				if ((ro->redeem[i] = b_str(p,
				    json_array_get(rules, i))) == NULL)
					return (-1);
			ro->n_redeem = n;
		}
		if ((rules = json_object_get(j, "rules")) != NULL &&
		    (n = json_array_size(rules)) > 0) {
			if ((ro->rules = arena_calloc(&p->arena, n,
			    sizeof(*ro->rules))) == NULL)
				return (-1);
			ro->n_rules = n;
			for (i = 0; i < n; i++)
				if (b_rule(p, &ro->rules[i],
				    json_array_get(rules, i)) == -1)
					return (-1);
			if (b_index(p, ro) == -1)
				return (-1);
		}
		ro++;
	}

	if (htab_init(&p->principals, &p->arena, json_object_size(prs)) == -1 ||
	    (p->principal_list = arena_calloc(&p->arena,
	    json_object_size(prs) + 1, sizeof(*p->principal_list))) == NULL)
		return (-1);
	json_object_foreach(prs, k, j) {
		if ((pr = arena_alloc(&p->arena, sizeof(*pr))) == NULL ||
		    (pr->name = arena_strndup(&p->arena, k, strlen(k))) == NULL)
			return (-1);
		pr->disabled = json_is_true(json_object_get(j, "disabled"));
		rules = json_object_get(j, "roles");
		if ((n = json_array_size(rules)) > 0) {
			if ((pr->roles = arena_calloc(&p->arena, n,
			    sizeof(*pr->roles))) == NULL)
				return (-1);
			for (i = 0; i < n; i++) {
				json_t *rn = json_array_get(rules, i);
				pr->roles[i] = htab_get(&p->roles,
				    json_string_value(rn),
				    json_string_length(rn));
			}
			pr->n_roles = n;
		}
		htab_put(&p->principals, pr->name, strlen(pr->name), pr);
		p->principal_list[p->n_principals++] = pr;
	}

	if ((red = json_object_get(doc, "redact")) != NULL &&
	    (p->n_redact = json_object_size(red)) > 0) {
		if ((p->redact = arena_calloc(&p->arena, p->n_redact,
		    sizeof(*p->redact))) == NULL)
			return (-1);
		rd = p->redact;
		json_object_foreach(red, k, j) {
			if ((rd->pattern = arena_strndup(&p->arena, k,
			    strlen(k))) == NULL)
				return (-1);
			rd->n_fields = json_array_size(j);
			if (rd->n_fields > 0 && (rd->fields = arena_calloc(
			    &p->arena, rd->n_fields, sizeof(*rd->fields))) ==
			    NULL)
				return (-1);
			for (i = 0; i < rd->n_fields; i++)
				if ((rd->fields[i] = b_str(p,
				    json_array_get(j, i))) == NULL)
					return (-1);
			rd++;
		}
	}
	return (b_limits(p, json_object_get(doc, "limits")));
}

static void
one_error(json_t **errors, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
one_error(json_t **errors, const char *fmt, ...)
{
	char	 msg[512], *c;
	va_list	 ap;

	if (errors == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* jansson's error text quotes the input's bytes, which need not be
	 * UTF-8: json_pack would refuse it and the list would be empty. */
	for (c = msg; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	*errors = json_pack("[{s:s, s:s}]", "path", "$", "message", msg);
}

struct policy *
policy_parse(const char *text, size_t len, json_t **errors)
{
	struct policy	*p = NULL;
	json_t		*doc = NULL, *problems = NULL;
	json_error_t	 jerr;
	int		 rc;

	if (errors != NULL)
		*errors = NULL;
	if (text == NULL) {
		one_error(errors, "no policy text");
		return (NULL);
	}
	if (len > POLICY_MAX_BYTES) {
		one_error(errors, "policy is %zu bytes; at most %d allowed",
		    len, POLICY_MAX_BYTES);
		return (NULL);
	}
	if ((doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		one_error(errors, "invalid JSON at line %d, column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		return (NULL);
	}
	if ((rc = policy_validate(doc, text, len, &problems)) == 1) {
		if (errors != NULL)
			*errors = problems;
		else
			json_decref(problems);
		goto done;
	}
	if (rc == 0 && (p = calloc(1, sizeof(*p))) != NULL &&
	    b_document(p, doc) == -1) {
		policy_free(p);
		p = NULL;
	}
	if (p == NULL)
		one_error(errors, "out of memory while reading the policy");
 done:
	json_decref(doc);
	return (p);
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	arena_free(&p->arena);
	free(p);
}

/* ---- evaluation ---- */

static const struct principal *
find_principal(const struct policy *p, const char *name)
{
	if (p == NULL || name == NULL)
		return (NULL);
	return (htab_get(&p->principals, name, strlen(name)));
}

static const struct principal *
find_enabled(const struct policy *p, const char *name)
{
	const struct principal	*pr = find_principal(p, name);

	return (pr != NULL && !pr->disabled ? pr : NULL);
}

/* A candidate decision: which rule (in evaluation order), what it
 * yields, and the amount it saw. */
struct pick {
	int			 set;
	size_t			 role_pos;	/* on the principal */
	size_t			 rule;		/* index in the role */
	const struct role	*role;
	int			 value;		/* approvals, or failure rank */
	int			 tier;
	const struct tier	*tierp;
	enum reason		 reason;
	int			 has_amount;
	int			 bound;		/* amount from args */
	struct amount		 amount;
	char			 amount_text[AMOUNT_MAX_TEXT];
	struct cond_failure	 why;		/* R_ARGS_NOT_ALLOWED */
};

/* 1 if (role_pos, rule) comes before the pick in evaluation order. */
static int
pick_before(const struct pick *a, size_t role_pos, size_t rule)
{
	if (role_pos != a->role_pos)
		return (role_pos < a->role_pos);
	return (rule < a->rule);
}

/* Failure ranks: the furthest failure is reported; conditions that do
 * not hold outrank the amount (CONTRACT §8.2: when no other rule allows,
 * the answer is args_not_allowed). */
#define FAIL_AMOUNT_REQUIRED	1
#define FAIL_CURRENCY		2
#define FAIL_OVER_LIMIT		3
#define FAIL_ARGS		4

struct evalstate {
	const struct policy_call *call;
	struct pick		 deny, allow, fail;
	/* the first 400 error in evaluation order, if any */
	enum reason		 error;
	size_t			 error_role_pos, error_rule;
	char			 message[POLICY_MESSAGE_MAX];
};

static void
eval_error(struct evalstate *st, const struct pick *c, enum reason error,
    const char *message)
{
	if (st->error != REASON_OK && (st->error_role_pos < c->role_pos ||
	    (st->error_role_pos == c->role_pos && st->error_rule < c->rule)))
		return;
	st->error = error;
	st->error_role_pos = c->role_pos;
	st->error_rule = c->rule;
	snprintf(st->message, sizeof(st->message), "%s", message);
}

/* The claim's value as text: as signed when given, else canonical. */
static void
claim_text(const struct policy_call *call, char out[AMOUNT_MAX_TEXT])
{
	size_t	 len;

	if (call->amount_text != NULL &&
	    (len = strlen(call->amount_text)) < AMOUNT_MAX_TEXT)
		memcpy(out, call->amount_text, len + 1);
	else
		amount_format(call->amount, out);
}

static void
eval_fail(struct evalstate *st, const struct pick *c)
{
	struct pick	*pk = &st->fail;

	if (pk->set && (c->value < pk->value || (c->value == pk->value &&
	    !pick_before(pk, c->role_pos, c->rule))))
		return;
	*pk = *c;
}

/*
 * The amount rule ru sees into c: from args through amount_from, else
 * the claim.  0 when the rule can go on (c->has_amount says whether
 * there is one); -1 when the call is refused (an error was recorded).
 */
static int
eval_amount(struct evalstate *st, const struct rule *ru, struct pick *c)
{
	const struct policy_call	*call = st->call;
	char				 msg[POLICY_MESSAGE_MAX];
	char				 a[AMOUNT_MAX_TEXT], b[AMOUNT_MAX_TEXT];

	if (ru->af == NULL) {
		if (call->amount == NULL)
			return (0);
		c->has_amount = 1;
		c->amount = *call->amount;
		claim_text(call, c->amount_text);
		return (0);
	}
	switch (policy_amount_read(ru->af, call, &c->amount, c->amount_text,
	    msg, sizeof(msg))) {
	case AMOUNT_READ_MISSING:
		return (0);
	case AMOUNT_READ_INVALID:
		eval_error(st, c, E_INVALID_AMOUNT, msg);
		return (-1);
	case AMOUNT_READ_OK:
		break;
	}
	c->has_amount = c->bound = 1;
	/* The tool executes args: a claim beside them must say the same. */
	if (call->amount != NULL && (amount_cmp(call->amount, &c->amount) !=
	    0 || strcmp(call->amount->currency, c->amount.currency) != 0)) {
		amount_format(call->amount, a);
		amount_format(&c->amount, b);
		snprintf(msg, sizeof(msg), "the amount claim (%s %s) differs "
		    "from the amount in args (%s %s), which the tool executes: "
		    "send the same amount in both, or only in args", a,
		    call->amount->currency, b, c->amount.currency);
		eval_error(st, c, E_AMOUNT_MISMATCH, msg);
		return (-1);
	}
	return (0);
}

static void
eval_rule(struct evalstate *st, const struct role *ro, size_t role_pos,
    size_t ri)
{
	const struct rule	*ru = &ro->rules[ri];
	const struct currency	*cur = NULL;
	struct pick		 c, *pk;
	enum cond_result	 cr = COND_HOLDS;
	size_t			 i;
	int			 fail = 0;

	memset(&c, 0, sizeof(c));
	c.set = 1;
	c.role = ro;
	c.role_pos = role_pos;
	c.rule = ri;
	c.tier = -1;

	if (ru->n_conds > 0)
		cr = policy_conds_check(ru->conds, ru->n_conds,
		    st->call->args, &c.why);
	if (ru->deny) {
		/* a deny rule denies unless its conditions surely fail */
		if (cr == COND_FAILS)
			return;
		c.reason = R_DENIED_BY_RULE;
		if (!st->deny.set || pick_before(&st->deny, role_pos, ri))
			st->deny = c;
		return;
	}
	if (cr != COND_HOLDS) {
		c.value = FAIL_ARGS;
		c.reason = R_ARGS_NOT_ALLOWED;
		eval_fail(st, &c);
		return;
	}
	if (eval_amount(st, ru, &c) == -1)
		return;

	/* a bound amount is required even without tiers: limits count it */
	if (!c.has_amount && (ru->af != NULL || ru->n_currencies > 0))
		fail = FAIL_AMOUNT_REQUIRED;
	else if (ru->n_currencies == 0)
		c.value = ru->approvals;
	else {
		for (i = 0; i < ru->n_currencies; i++)
			if (strcmp(ru->currencies[i].code,
			    c.amount.currency) == 0) {
				cur = &ru->currencies[i];
				break;
			}
		if (cur == NULL)
			fail = FAIL_CURRENCY;
		else {
			/* first tier whose max >= value, inclusive */
			for (i = 0; i < cur->n_tiers; i++)
				if (amount_cmp(&cur->tiers[i].max,
				    &c.amount) >= 0)
					break;
			if (i < cur->n_tiers)
				c.value = cur->tiers[i].approvals;
			else {
				/* report the last limit, the one exceeded */
				i = cur->n_tiers - 1;
				fail = FAIL_OVER_LIMIT;
			}
			c.tier = (int)i;
			c.tierp = &cur->tiers[i];
		}
	}
	if (fail) {
		c.value = fail;
		c.reason = fail == FAIL_OVER_LIMIT ? R_AMOUNT_OVER_LIMIT :
		    fail == FAIL_CURRENCY ? R_CURRENCY_NOT_ALLOWED :
		    R_AMOUNT_REQUIRED;
		eval_fail(st, &c);
		return;
	}
	pk = &st->allow;
	if (pk->set && (c.value > pk->value || (c.value == pk->value &&
	    !pick_before(pk, role_pos, ri))))
		return;
	c.reason = c.value == 0 ? R_POLICY_ALLOW : R_APPROVAL_REQUIRED;
	*pk = c;
}

static void
eval_span(struct evalstate *st, const struct role *ro, size_t role_pos,
    const struct span *sp)
{
	size_t	 i;

	if (sp == NULL)
		return;
	for (i = 0; i < sp->n; i++)
		eval_rule(st, ro, role_pos, (size_t)ro->idx[sp->start + i]);
}

static void
eval_fill(struct evaluation *ev, const struct pick *pk)
{
	const struct rule	*ru = &pk->role->rules[pk->rule];

	ev->reason = pk->reason;
	ev->role = pk->role->name;
	ev->rule_index = (int)pk->rule;
	ev->rule_tool = ru->tool;
	ev->tier_index = pk->tier;
	ev->tier_max = pk->tierp ? pk->tierp->max_text : NULL;
	if (pk->has_amount) {
		ev->has_amount = 1;
		ev->amount_from_args = pk->bound;
		ev->amount = pk->amount;
		memcpy(ev->amount_text, pk->amount_text,
		    sizeof(ev->amount_text));
	}
	if (pk->reason == R_ARGS_NOT_ALLOWED && pk->why.entry != NULL) {
		ev->failed_pointer = pk->why.entry->pointer;
		ev->failed_condition = policy_cond_key_name(pk->why.key);
		snprintf(ev->message, sizeof(ev->message), "args %s does not "
		    "meet the condition \"%s\" of the rule that would allow "
		    "this call", pk->why.where[0] ? pk->why.where : "\"\"",
		    ev->failed_condition);
	} else if (pk->reason == R_ARGS_NOT_ALLOWED) {
		snprintf(ev->message, sizeof(ev->message), "the conditions "
		    "on args could not be checked (out of memory)");
	}
}

/* The amount claim as the call's amount, until a rule binds another. */
static void
eval_claim(struct evaluation *ev, const struct policy_call *call)
{
	if (call->amount == NULL)
		return;
	ev->has_amount = 1;
	ev->amount = *call->amount;
	claim_text(call, ev->amount_text);
}

/*
 * Evaluation order (proto/policy.md): unknown principal, disabled, any
 * matching deny rule whose conditions hold, a 400 error met while
 * reading an amount, the matching allow rule needing the fewest
 * approvals (first in role-then-rule order on ties), else the furthest
 * failure.  A tool that is not a valid tool name matches no rule.
 */
void
policy_evaluate(const struct policy *p, const struct policy_call *call,
    struct evaluation *ev)
{
	static const struct policy_call	 nocall;
	const struct principal		*pr;
	const struct role		*ro;
	const struct rule		*ru;
	struct evalstate		 st;
	size_t				 r, i, tlen;

	memset(ev, 0, sizeof(*ev));
	ev->outcome = OUTCOME_DENY;
	ev->reason = R_NO_PERMISSION;
	ev->rule_index = -1;
	ev->tier_index = -1;
	if (call == NULL)
		call = &nocall;
	eval_claim(ev, call);

	if ((pr = find_principal(p, call->principal)) == NULL) {
		ev->reason = R_UNKNOWN_PRINCIPAL;
		return;
	}
	if (pr->disabled) {
		ev->reason = R_PRINCIPAL_DISABLED;
		return;
	}
	/* Intents were held to the strict grammar already; MCP names may
	 * have upper case (CONTRACT §9). */
	if (!policy_mcp_name_valid(call->tool))
		return;
	tlen = strlen(call->tool);

	memset(&st, 0, sizeof(st));
	st.call = call;
	for (r = 0; r < pr->n_roles; r++) {
		ro = pr->roles[r];
		if (ro->n_rules == 0)
			continue;
		eval_span(&st, ro, r, htab_get(&ro->exact, call->tool, tlen));
		/* "a.b.c" is matched by "a.*" and "a.b.*" */
		for (i = 1; i < tlen; i++)
			if (call->tool[i] == '.')
				eval_span(&st, ro, r,
				    htab_get(&ro->prefix, call->tool, i));
	}

	if (st.deny.set) {
		eval_fill(ev, &st.deny);
		return;
	}
	if (st.error != REASON_OK) {
		ev->reason = ev->error = st.error;
		memcpy(ev->message, st.message, sizeof(ev->message));
		return;
	}
	if (st.allow.set) {
		ru = &st.allow.role->rules[st.allow.rule];
		eval_fill(ev, &st.allow);
		ev->approval_ttl = ru->ttl;
		if (st.allow.value == 0)
			ev->outcome = OUTCOME_ALLOW;
		else {
			ev->outcome = OUTCOME_PENDING;
			ev->approvals_required = st.allow.value;
			ev->approver_roles = ru->approvers;
			ev->n_approver_roles = ru->n_approvers;
		}
		return;
	}
	if (st.fail.set)
		eval_fill(ev, &st.fail);
}

/* ---- limits ---- */

static int
limit_applies(const struct policy *p, size_t li,
    const struct policy_call *call)
{
	const struct policy_limit	*l = &p->limits[li];
	size_t				 i;

	if (l->n_principals > 0 && (call->principal == NULL ||
	    htab_get(&p->limit_principals[li], call->principal,
	    strlen(call->principal)) == NULL))
		return (0);
	for (i = 0; i < l->n_tools; i++)
		if (policy_pattern_match(l->tools[i], call->tool))
			return (1);
	return (0);
}

int
policy_limits_for(const struct policy *p, const struct policy_call *call,
    struct policy_limit_use **uses, size_t *n)
{
	struct policy_limit_use	*u = NULL;
	size_t			 i, k = 0, cap = 0;

	*uses = NULL;
	*n = 0;
	if (p == NULL || call == NULL || !policy_mcp_name_valid(call->tool))
		return (0);
	for (i = 0; i < p->n_limits; i++) {
		if (!limit_applies(p, i, call))
			continue;
		if (k == cap) {
			struct policy_limit_use *nu;

			cap = cap ? cap * 2 : 4;
			if ((nu = realloc(u, cap * sizeof(*u))) == NULL)
				goto bad;
			u = nu;
		}
		u[k].limit = &p->limits[i];
		if ((u[k].key = policy_limit_key(p->limits[i].per,
		    p->limits[i].n_per, call)) == NULL)
			goto bad;
		k++;
	}
	*uses = u;
	*n = k;
	return (0);
 bad:
	policy_limit_uses_free(u, k);
	return (-1);
}

void
policy_limit_uses_free(struct policy_limit_use *uses, size_t n)
{
	size_t	 i;

	for (i = 0; uses != NULL && i < n; i++)
		free(uses[i].key);
	free(uses);
}

size_t
policy_limit_count(const struct policy *p)
{
	return (p != NULL ? p->n_limits : 0);
}

const struct policy_limit *
policy_limit_at(const struct policy *p, size_t i)
{
	return (p != NULL && i < p->n_limits ? &p->limits[i] : NULL);
}

int
policy_has_role(const struct policy *p, const char *principal,
    const char *role)
{
	const struct principal	*pr = find_enabled(p, principal);
	size_t			 i;

	if (pr == NULL || role == NULL)
		return (0);
	for (i = 0; i < pr->n_roles; i++)
		if (strcmp(pr->roles[i]->name, role) == 0)
			return (1);
	return (0);
}

int
policy_is_operator(const struct policy *p, const char *principal)
{
	const struct principal	*pr = find_enabled(p, principal);
	size_t			 i;

	if (pr == NULL)
		return (0);
	for (i = 0; i < pr->n_roles; i++)
		if (pr->roles[i]->operator)
			return (1);
	return (0);
}

int
policy_is_approver(const struct policy *p, const char *principal)
{
	const struct principal	*pr = find_enabled(p, principal);
	size_t			 i;

	if (pr == NULL)
		return (0);
	for (i = 0; i < pr->n_roles; i++)
		if (pr->roles[i]->approver)
			return (1);
	return (0);
}

int
policy_may_redeem(const struct policy *p, const char *principal,
    const char *tool)
{
	const struct principal	*pr = find_enabled(p, principal);
	size_t			 i, k;

	if (pr == NULL || !policy_mcp_name_valid(tool))
		return (0);
	for (i = 0; i < pr->n_roles; i++)
		for (k = 0; k < pr->roles[i]->n_redeem; k++)
			if (policy_pattern_match(pr->roles[i]->redeem[k], tool))
				return (1);
	return (0);
}

int
policy_knows(const struct policy *p, const char *principal)
{
	return (find_principal(p, principal) != NULL);
}

int
policy_is_redacted(const struct policy *p, const char *tool,
    const char *field)
{
	size_t	 i, k;

	if (p == NULL || tool == NULL || field == NULL)
		return (0);
	for (i = 0; i < p->n_redact; i++) {
		if (!policy_pattern_match(p->redact[i].pattern, tool))
			continue;
		for (k = 0; k < p->redact[i].n_fields; k++)
			if (strcmp(p->redact[i].fields[k], field) == 0)
				return (1);
	}
	return (0);
}

/*
 * Whether tools/list offers tool to principal: some allow rule of its
 * roles matches, whatever it needs (an amount, approvals, conditions on
 * args), and no deny rule without conditions matches.  Only the tool
 * name counts: what a rule requires of a call, or denies in it, is
 * decided when the call comes.
 */
int
policy_offers(const struct policy *p, const char *principal,
    const char *tool)
{
	const struct principal	*pr = find_enabled(p, principal);
	const struct role	*ro;
	const struct rule	*rule;
	const struct span	*spans[POLICY_MAX_TOOL + 1];
	size_t			 r, i, k, n, tlen;
	int			 allow = 0;

	if (pr == NULL || !policy_mcp_name_valid(tool))
		return (0);
	tlen = strlen(tool);
	for (r = 0; r < pr->n_roles; r++) {
		ro = pr->roles[r];
		if (ro->n_rules == 0)
			continue;
		n = 0;
		spans[n++] = htab_get(&ro->exact, tool, tlen);
		for (i = 1; i < tlen; i++)
			if (tool[i] == '.')
				spans[n++] = htab_get(&ro->prefix, tool, i);
		for (i = 0; i < n; i++) {
			if (spans[i] == NULL)
				continue;
			for (k = 0; k < spans[i]->n; k++) {
				rule = &ro->rules[ro->idx[spans[i]->start + k]];
				/* a deny rule with conditions denies only the
				 * calls that meet them: the tool stays offered */
				if (rule->deny && rule->n_conds == 0)
					return (0);
				if (!rule->deny)
					allow = 1;
			}
		}
	}
	return (allow);
}

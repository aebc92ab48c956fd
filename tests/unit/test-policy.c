/*
 * test-policy: broker/core/policy.c, policy_validate.c, policy_args.c and
 * policy_warn.c.  Validation: one document per kind of problem, checking
 * the exact JSON paths reported (and that nothing else is), v2's
 * amount_from, conditions and limits included.  Evaluation: a decision
 * table over policies/example.json covering every tier boundary with the
 * amount in args, then small policies for deny-overrides, fewest
 * approvals, rule order, prefixes, disabled principals and redaction;
 * decision tables for amount_from (strings, numbers, scales, mismatches),
 * every condition, deny rules with conditions; the limits that apply to
 * a call and their keys; policy check warnings; the helpers; concurrent
 * readers; and a policy of benchmark size.
 *
 * The source root comes from argv[1], else TOOLGATE_SOURCE_ROOT (set by
 * tests/meson.build), else the current directory.
 */
#undef NDEBUG

#include <assert.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "amount.h"
#include "canon.h"
#include "policy.h"
#include "reason.h"
#include "check.h"

static int	passed, failed;

static const char	*root = ".";

static char *
slurp(const char *path, size_t *len)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		exit(1);
	}
	assert(fseek(f, 0, SEEK_END) == 0);
	assert((n = ftell(f)) >= 0);
	rewind(f);
	assert((buf = malloc((size_t)n + 1)) != NULL);
	assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return (buf);
}

static struct policy *
load_text(const char *text)
{
	struct policy	*p;
	json_t		*errors = NULL;
	char		*dump;

	p = policy_parse(text, strlen(text), &errors);
	if (p == NULL) {
		dump = json_dumps(errors, JSON_INDENT(1));
		fprintf(stderr, "policy refused: %s\n", dump);
		free(dump);
		json_decref(errors);
		exit(1);
	}
	assert(errors == NULL);
	return (p);
}

static struct policy *
load_file(const char *rel)
{
	char		 path[4096];
	char		*text;
	size_t		 len;
	struct policy	*p;
	json_t		*errors = NULL;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	text = slurp(path, &len);
	p = policy_parse(text, len, &errors);
	CHECK(p != NULL && errors == NULL, "%s refused", path);
	if (p == NULL) {
		char *dump = json_dumps(errors, JSON_INDENT(1));
		fprintf(stderr, "%s\n", dump);
		free(dump);
		exit(1);
	}
	free(text);
	return (p);
}

/* ---- validation ---- */

/* A valid base to which the cases below add one problem each; written
 * with ' for " to keep the table readable. */
struct vcase {
	const char	*name;
	const char	*doc;
	const char	*paths[6];	/* exactly the paths expected */
	const char	*msg;		/* substring of the first message */
};

static const struct vcase vcases[] = {
	{ "bad_json_is_one_error_at_root_with_line",
	  "{\n 'principals': {},\n 'roles': {,}\n}",
	  { "$" }, "line 3" },
	{ "duplicate_key_refused",
	  "{'principals': {}, 'roles': {}, 'roles': {}}",
	  { "$" }, "duplicate" },
	{ "trailing_garbage_refused",
	  "{'principals': {}, 'roles': {}} x",
	  { "$" }, "line 1" },
	{ "top_level_must_be_object",
	  "[]", { "$" }, "object" },
	{ "principals_and_roles_required",
	  "{}", { "$", "$" }, "roles" },
	{ "unknown_top_level_key",
	  "{'principals': {}, 'roles': {}, 'version': 2}",
	  { "$.version" }, "unknown key" },
	{ "description_must_be_string",
	  "{'principals': {}, 'roles': {}, 'description': 1}",
	  { "$.description" }, "string" },
	{ "principals_must_be_object",
	  "{'principals': [], 'roles': {}}",
	  { "$.principals" }, "object" },
	{ "roles_must_be_object",
	  "{'principals': {'p': {'roles': ['x']}}, 'roles': []}",
	  { "$.roles" }, "object" },
	{ "principal_must_be_object",
	  "{'principals': {'p': ['r']}, 'roles': {'r': {}}}",
	  { "$.principals.p" }, "object" },
	{ "principal_needs_roles_and_no_unknown_keys",
	  "{'principals': {'p': {'rolez': ['r']}}, 'roles': {'r': {}}}",
	  { "$.principals.p.rolez", "$.principals.p" }, "unknown key" },
	{ "principal_role_must_exist",
	  "{'principals': {'p': {'roles': ['r', 'nope']}}, "
	  "'roles': {'r': {}}}",
	  { "$.principals.p.roles[1]" }, "not defined" },
	{ "principal_role_listed_twice",
	  "{'principals': {'p': {'roles': ['r', 'r']}}, 'roles': {'r': {}}}",
	  { "$.principals.p.roles[1]" }, "twice" },
	{ "principal_roles_must_be_strings",
	  "{'principals': {'p': {'roles': 'r'}, 'q': {'roles': [1]}}, "
	  "'roles': {'r': {}}}",
	  { "$.principals.p.roles", "$.principals.q.roles[0]" }, "array" },
	{ "disabled_must_be_boolean_and_odd_keys_are_bracketed",
	  "{'principals': {'svc.example': {'roles': [], 'disabled': 'yes'}},"
	  " 'roles': {}}",
	  { "$.principals[\"svc.example\"].disabled" }, "true or false" },
	{ "empty_principal_name",
	  "{'principals': {'': {'roles': []}}, 'roles': {}}",
	  { "$.principals[\"\"]" }, "1 to 256" },
	{ "control_char_in_principal_name",
	  "{'principals': {'a\\u0001b': {'roles': []}}, 'roles': {}}",
	  { "$.principals[\"a\\u0001b\"]" }, "control" },
	{ "quote_and_space_in_role_name_are_escaped",
	  "{'principals': {}, 'roles': {'a\\\"b c': {'operator': 1}}}",
	  { "$.roles[\"a\\\"b c\"].operator" }, "true or false" },
	{ "role_must_be_object",
	  "{'principals': {}, 'roles': {'r': true}}",
	  { "$.roles.r" }, "object" },
	{ "role_unknown_key",
	  "{'principals': {}, 'roles': {'r': {'rulez': []}}}",
	  { "$.roles.r.rulez" }, "unknown key" },
	{ "redeem_patterns_checked",
	  "{'principals': {}, 'roles': {'r': {'redeem': ['ok.*', 'B d', "
	  "'*', 'a..b', 5]}}}",
	  { "$.roles.r.redeem[1]", "$.roles.r.redeem[2]",
	    "$.roles.r.redeem[3]", "$.roles.r.redeem[4]" }, "pattern" },
	{ "rules_must_be_array",
	  "{'principals': {}, 'roles': {'r': {'rules': {}}}}",
	  { "$.roles.r.rules" }, "array" },
	{ "rule_must_be_object",
	  "{'principals': {}, 'roles': {'r': {'rules': ['crm.lookup']}}}",
	  { "$.roles.r.rules[0]" }, "object" },
	{ "rule_needs_tool",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'effect': "
	  "'allow'}]}}}",
	  { "$.roles.r.rules[0]" }, "missing \"tool\"" },
	{ "rule_tool_grammar",
	  "{'principals': {}, 'roles': {'r': {'rules': ["
	  "{'tool': 'Crm!lookup'}, {'tool': 'crm.'}, {'tool': 'a.*.b'},"
	  "{'tool': '.*'}, {'tool': 'crm lookup'}, {'tool': 'crm.*'}]}}}",
	  { "$.roles.r.rules[0].tool", "$.roles.r.rules[1].tool",
	    "$.roles.r.rules[2].tool", "$.roles.r.rules[3].tool",
	    "$.roles.r.rules[4].tool" }, "tool" },
	{ "rule_unknown_key",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'aprovals': 1}]}}}",
	  { "$.roles.r.rules[0].aprovals" }, "unknown key" },
	{ "effect_allow_or_deny",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'effect': 'maybe'}]}}}",
	  { "$.roles.r.rules[0].effect" }, "\"allow\" or \"deny\"" },
	{ "approvals_must_be_json_integer_in_range",
	  "{'principals': {}, 'roles': {'ap': {}, 'r': {'rules': ["
	  "{'tool': 'a', 'approvals': 1.0, 'approvers': ['ap']},"
	  "{'tool': 'b', 'approvals': '1', 'approvers': ['ap']},"
	  "{'tool': 'c', 'approvals': 17, 'approvers': ['ap']},"
	  "{'tool': 'd', 'approvals': -1},"
	  "{'tool': 'e', 'approvals': true}]}}}",
	  { "$.roles.r.rules[0].approvals", "$.roles.r.rules[1].approvals",
	    "$.roles.r.rules[2].approvals", "$.roles.r.rules[3].approvals",
	    "$.roles.r.rules[4].approvals" }, "real number" },
	{ "approvals_need_approvers",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'approvals': 1}, {'tool': 'b', 'approvals': 2, "
	  "'approvers': []}]}}}",
	  { "$.roles.r.rules[0]", "$.roles.r.rules[1].approvers" },
	  "approvers" },
	{ "approver_roles_must_exist",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'approvals': 1, 'approvers': ['ghost']}]}}}",
	  { "$.roles.r.rules[0].approvers[0]" }, "not defined" },
	{ "approvals_not_with_currencies",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'approvals': 0, 'currencies': {'USD': [{'max': '1', "
	  "'approvals': 0}]}}]}}}",
	  { "$.roles.r.rules[0].approvals" }, "currencies" },
	{ "currencies_must_be_non_empty_object",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'currencies': {}}, {'tool': 'b', 'currencies': ['USD']}]}}}",
	  { "$.roles.r.rules[0].currencies",
	    "$.roles.r.rules[1].currencies" }, "at least one" },
	{ "currency_code_three_capitals",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'currencies': {'usd': [{'max': '1', 'approvals': 0}], "
	  "'EURO': [{'max': '1', 'approvals': 0}]}}]}}}",
	  { "$.roles.r.rules[0].currencies.usd",
	    "$.roles.r.rules[0].currencies.EURO" }, "three capital" },
	{ "tiers_non_empty_array",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'currencies': {'USD': [], 'EUR': {}}}]}}}",
	  { "$.roles.r.rules[0].currencies.USD",
	    "$.roles.r.rules[0].currencies.EUR" }, "at least one tier" },
	{ "tier_max_must_be_amount_string",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'currencies': {'USD': [{'max': 1000, 'approvals': 0}, "
	  "{'max': '1e4', 'approvals': 0}, {'max': '-5', 'approvals': 0},"
	  "{'max': '1.1234567', 'approvals': 0}]}}]}}}",
	  { "$.roles.r.rules[0].currencies.USD[0].max",
	    "$.roles.r.rules[0].currencies.USD[1].max",
	    "$.roles.r.rules[0].currencies.USD[2].max",
	    "$.roles.r.rules[0].currencies.USD[3].max" }, "decimal string" },
	{ "tier_max_strictly_increasing",
	  "{'principals': {}, 'roles': {'fin': {}, 'payments-agent': "
	  "{'rules': [{'tool': 'payments.transfer', 'approvers': ['fin'], "
	  "'currencies': {'USD': [{'max': '1000.00', 'approvals': 0}, "
	  "{'max': '1000', 'approvals': 1}, {'max': '999', "
	  "'approvals': 1}, {'max': '2000', 'approvals': 2}]}}]}}}",
	  { "$.roles.payments-agent.rules[0].currencies.USD[1].max",
	    "$.roles.payments-agent.rules[0].currencies.USD[2].max" },
	  "greater than the previous tier's max (1000)" },
	{ "tier_fields_required_and_known",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'currencies': {'USD': [{'max': '1'}, {'approvals': 0}, "
	  "{'max': '5', 'approvals': 0, 'min': '0'}, 7]}}]}}}",
	  { "$.roles.r.rules[0].currencies.USD[0]",
	    "$.roles.r.rules[0].currencies.USD[1]",
	    "$.roles.r.rules[0].currencies.USD[2].min",
	    "$.roles.r.rules[0].currencies.USD[3]" }, "approvals" },
	{ "tier_approvals_need_approvers",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'currencies': {'USD': [{'max': '1', 'approvals': 0}, "
	  "{'max': '2', 'approvals': 3}]}}]}}}",
	  { "$.roles.r.rules[0]" }, "approvers" },
	{ "approval_ttl_range_and_type",
	  "{'principals': {}, 'roles': {'r': {'rules': ["
	  "{'tool': 'a', 'approval_ttl': 0}, {'tool': 'b', "
	  "'approval_ttl': 604801}, {'tool': 'c', 'approval_ttl': '3600'},"
	  "{'tool': 'd', 'approval_ttl': 604800}]}}}",
	  { "$.roles.r.rules[0].approval_ttl",
	    "$.roles.r.rules[1].approval_ttl",
	    "$.roles.r.rules[2].approval_ttl" }, "from 1 to 604800" },
	{ "deny_rule_carries_nothing_else",
	  "{'principals': {}, 'roles': {'ap': {}, 'r': {'rules': [{'tool': "
	  "'a', 'effect': 'deny', 'approvals': 1, 'approvers': ['ap'], "
	  "'approval_ttl': 5, 'currencies': {'USD': [{'max': '1', "
	  "'approvals': 0}]}}]}}}",
	  { "$.roles.r.rules[0].approvals", "$.roles.r.rules[0].currencies",
	    "$.roles.r.rules[0].approvers",
	    "$.roles.r.rules[0].approval_ttl" }, "deny rule" },
	{ "redact_must_be_object",
	  "{'principals': {}, 'roles': {}, 'redact': ['iban']}",
	  { "$.redact" }, "object" },
	{ "redact_patterns_and_fields",
	  "{'principals': {}, 'roles': {}, 'redact': {'payments.*': "
	  "['iban', '', 3], 'B@D': ['x'], 'crm.note': 'note'}}",
	  { "$.redact[\"payments.*\"][1]", "$.redact[\"payments.*\"][2]",
	    "$.redact.B@D", "$.redact[\"crm.note\"]" }, "non-empty string" },
	{ "several_problems_all_reported",
	  "{'principals': {'p': {'roles': ['ghost'], 'disabled': 0}}, "
	  "'roles': {'r': {'operator': 'yes', 'rules': [{'tool': 'A/'}, "
	  "{'tool': 'b', 'effect': 'deny', 'approvals': 1}]}}, 'x': 1}",
	  { "$.x", "$.principals.p.roles[0]", "$.principals.p.disabled",
	    "$.roles.r.operator", "$.roles.r.rules[0].tool",
	    "$.roles.r.rules[1].approvals" }, "unknown key" },
	/* v2: amount_from, conditions, limits (CONTRACT §8) */
	{ "amount_from_must_be_object",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'amount_from': '/amount'}]}}}",
	  { "$.roles.r.rules[0].amount_from" },
	  "object" },
	{ "amount_from_needs_value_and_currency",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'amount_from': {}}]}}}",
	  { "$.roles.r.rules[0].amount_from",
	    "$.roles.r.rules[0].amount_from" },
	  "missing \"value\"" },
	{ "amount_from_value_is_a_pointer_to_a_member",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'amount_from': {'value': 'amount', 'currency': 'USD'}},{'tool': "
	  "'b', 'amount_from': {'value': '/a~2', 'currency': "
	  "'USD'}},{'tool': 'c', 'amount_from': {'value': '', 'currency': "
	  "'USD'}},{'tool': 'd', 'amount_from': {'value': 5, 'currency': "
	  "'USD'}}]}}}",
	  { "$.roles.r.rules[0].amount_from.value",
	    "$.roles.r.rules[1].amount_from.value",
	    "$.roles.r.rules[2].amount_from.value",
	    "$.roles.r.rules[3].amount_from.value" },
	  "~0" },
	{ "amount_from_currency_pointer_or_code",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'amount_from': {'value': '/v', 'currency': 'usd'}},{'tool': 'b', "
	  "'amount_from': {'value': '/v', 'currency': '/c~'}},{'tool': 'c', "
	  "'amount_from': {'value': '/v', 'currency': 5}},{'tool': 'd', "
	  "'amount_from': {'value': '/v', 'currency': 'GBP'}, 'currencies': "
	  "{'USD': [{'max': '1', 'approvals': 0}]}}]}}}",
	  { "$.roles.r.rules[0].amount_from.currency",
	    "$.roles.r.rules[1].amount_from.currency",
	    "$.roles.r.rules[2].amount_from.currency",
	    "$.roles.r.rules[3].amount_from.currency" },
	  "not among" },
	{ "amount_from_scale_0_to_6",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'amount_from': {'value': '/v', 'currency': 'USD', 'scale': "
	  "7}},{'tool': 'b', 'amount_from': {'value': '/v', 'currency': "
	  "'USD', 'scale': -1}},{'tool': 'c', 'amount_from': {'value': "
	  "'/v', 'currency': 'USD', 'scale': '2'}},{'tool': 'd', "
	  "'amount_from': {'value': '/v', 'currency': 'USD', 'scale': "
	  "1.0}}]}}}",
	  { "$.roles.r.rules[0].amount_from.scale",
	    "$.roles.r.rules[1].amount_from.scale",
	    "$.roles.r.rules[2].amount_from.scale",
	    "$.roles.r.rules[3].amount_from.scale" },
	  "from 0 to 6" },
	{ "amount_from_unknown_key",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'amount_from': {'value': '/v', 'currency': 'USD', 'unit': "
	  "'cents'}}]}}}",
	  { "$.roles.r.rules[0].amount_from.unit" },
	  "unknown key" },
	{ "amount_from_not_on_deny_rules",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'effect': 'deny', 'amount_from': {'value': '/v', 'currency': "
	  "'USD'}}]}}}",
	  { "$.roles.r.rules[0].amount_from" },
	  "deny rule" },
	{ "args_must_be_object",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args':"
	  " []}]}}}",
	  { "$.roles.r.rules[0].args" },
	  "JSON Pointer -> condition" },
	{ "args_not_empty",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args':"
	  " {}}]}}}",
	  { "$.roles.r.rules[0].args" },
	  "at least one" },
	{ "args_keys_are_pointers",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args': {'to': {'present': true}, '/a~x': {'present': "
	  "true}}}]}}}",
	  { "$.roles.r.rules[0].args.to", "$.roles.r.rules[0].args./a~x" },
	  "key is not a JSON Pointer" },
	{ "condition_object_not_empty",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args': {'/a': 'x', '/b': {}}}]}}}",
	  { "$.roles.r.rules[0].args./a", "$.roles.r.rules[0].args./b" },
	  "at least one of present" },
	{ "condition_unknown_key",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args': {'/a': {'equals': 1}}}]}}}",
	  { "$.roles.r.rules[0].args./a.equals" },
	  "unknown key" },
	{ "one_of_is_a_non_empty_array",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args': {'/a': {'one_of': 'x'}, '/b': {'one_of': []}, '/c': "
	  "{'not_one_of'"
	  ": {}}}}]}}}",
	  { "$.roles.r.rules[0].args./a.one_of",
	    "$.roles.r.rules[0].args./b.one_of",
	    "$.roles.r.rules[0].args./c.not_one_of" },
	  "at least one value" },
	{ "prefix_suffix_are_strings",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args': {'/a': {'prefix': 5, 'suffix': null}}}]}}}",
	  { "$.roles.r.rules[0].args./a.prefix",
	    "$.roles.r.rules[0].args./a.suffix" },
	  "must be a string" },
	{ "max_length_range",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args': {'/a': {'max_length': -1}, '/b': {'max_length': '5'}, "
	  "'/c': {'max_length': 65537}}}]}}}",
	  { "$.roles.r.rules[0].args./a.max_length",
	    "$.roles.r.rules[0].args./b.max_length",
	    "$.roles.r.rules[0].args./c.max_length" },
	  "from 0 to 65536" },
	{ "min_max_are_amounts_in_order",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args': {'/a': {'min': 'abc'}, '/b': {'max': 5}, '/c': {'min': "
	  "'-1'}, '/d': {'min': '10', 'max': '9.99'}}}]}}}",
	  { "$.roles.r.rules[0].args./a.min", "$.roles.r.rules[0].args./b.max",
	    "$.roles.r.rules[0].args./c.min",
	    "$.roles.r.rules[0].args./d.max" },
	  "below min (10)" },
	{ "present_rules",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args': {'/a': {'present': 'yes'}, '/b': {'present': false, "
	  "'prefix': 'x'}, '/c': {'each': {'present': true}}}}]}}}",
	  { "$.roles.r.rules[0].args./a.present",
	    "$.roles.r.rules[0].args./b.present",
	    "$.roles.r.rules[0].args./c.each.present" },
	  "cannot be combined" },
	{ "each_shape_and_depth",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args': {'/a': {'each': 'x'}, '/b': {'each': {'each': {'each': "
	  "{'each': {'each': {'each': {'each': {'each': {'each': {'one_of': "
	  "[1]}}}}}}}}"
	  "}}}}]}}}",
	  { "$.roles.r.rules[0].args./a.each",
	    "$.roles.r.rules[0].args./b.each.each.each.each.each.each.each"
	    ".each.each" },
	  "nested too deeply" },
	{ "one_of_numbers_must_be_kept",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args': {'/a': {'one_of': ['x', 0.10000000000000001]}}}]}}}",
	  { "$.roles.r.rules[0].args./a.one_of[1]" },
	  "not kept exactly" },
	{ "one_of_big_integer",
	  "{'principals': {}, 'roles': {'r': {'rules': [{'tool': 'a', "
	  "'args': {'/a': {'one_of': [9007199254740993]}}}]}}}",
	  { "$.roles.r.rules[0].args./a.one_of[0]" },
	  "above 2^53" },
	{ "limits_must_be_array",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': {}}",
	  { "$.limits" },
	  "array of limits" },
	{ "limit_must_be_object",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': [5]}",
	  { "$.limits[0]" },
	  "object" },
	{ "limit_missing_everything",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': [{}]}",
	  { "$.limits[0]", "$.limits[0]", "$.limits[0]", "$.limits[0]" },
	  "missing a maximum" },
	{ "limit_names",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': [{'name': 'Bad Name', 'tools': ['x'], 'window': 60, "
	  "'max_count': 1}, {'name': 'ok', 'tools': ['x'], 'window': 60, "
	  "'max_count': 1}, {'name': 'ok', 'tools': ['x'], 'window': 60, "
	  "'max_count': 1}, {'name': 5, 'tools': ['x'], 'window': 60, "
	  "'max_count': 1}, {'name': "
	  "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', "
	  "'tools': ['x'], 'window': 60, 'max_count': 1}]}",
	  { "$.limits[0].name", "$.limits[2].name", "$.limits[3].name",
	    "$.limits[4].name" },
	  "used twice" },
	{ "limit_tools",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': [{'name': 'a', 'tools': [], 'window': 60, 'max_count': "
	  "1}, {'name': 'b', 'tools': ['bad..x'], 'window': 60, 'max_count': "
	  "1}, {'name': 'c', 'tools': 'x', 'window': 60, 'max_count': 1}]}",
	  { "$.limits[0].tools", "$.limits[1].tools[0]", "$.limits[2].tools" },
	  "at least one tool" },
	{ "limit_principals",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': [{'name': 'a', 'principals': [], 'tools': ['x'], "
	  "'window': 60, 'max_count': 1}, {'name': 'b', 'principals': "
	  "['ghost'], 'tools': ['x'], 'window': 60, 'max_count': 1}, "
	  "{'name': 'c', 'principals': ['p', 'p'], 'tools': ['x'], "
	  "'window': 60, 'max_count': 1}]}",
	  { "$.limits[0].principals", "$.limits[1].principals[0]",
	    "$.limits[2].principals[1]" },
	  "not defined in $.principals" },
	{ "limit_per",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': [{'name': 'a', 'per': 'agent', 'tools': ['x'], "
	  "'window': 60, 'max_count': 1}, {'name': 'b', 'per': ['agent', "
	  "'agent'], 'tools': ['x'], 'window': 60, 'max_count': 1}, "
	  "{'name': 'c', 'per': ['who'], 'tools': ['x'], 'window': 60, "
	  "'max_count': 1}, {'name': 'd', 'per': ['/a~2'], 'tools': ['x'], "
	  "'window': 60, 'max_count': 1}, {'name': 'e', 'per': ['/to', "
	  "'/to'], 'tools': ['x'], 'window': 60, 'max_count': 1}, {'name': "
	  "'f', 'per': [''], 'tools': ['x'], 'window': 60, 'max_count': "
	  "1}]}",
	  { "$.limits[0].per", "$.limits[1].per[1]", "$.limits[2].per[0]",
	    "$.limits[3].per[0]", "$.limits[4].per[1]", "$.limits[5].per[0]" },
	  "listed twice" },
	{ "limit_window",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': [{'name': 'a', 'tools': ['x'], 'window': 59, "
	  "'max_count': 1}, {'name': 'b', 'tools': ['x'], 'window': "
	  "31536001, 'max_count': 1}, {'name': 'c', 'tools': ['x'], "
	  "'window': 86400.0, 'max_count': 1}, {'name': 'd', 'tools': "
	  "['x'], 'window': '60', 'max_count': 1}]}",
	  { "$.limits[0].window", "$.limits[1].window", "$.limits[2].window",
	    "$.limits[3].window" },
	  "from 60 to 31536000" },
	{ "limit_maximum_exactly_one",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': [{'name': 'a', 'tools': ['x'], 'window': 60, "
	  "'max_amount': '1', 'currency': 'USD', 'max_count': 1}, {'name': "
	  "'b', 'tools': ['x'], 'window': 60, 'max_amount': '0', "
	  "'currency': 'USD'}, {'name': 'c', 'tools': ['x'], 'window': 60, "
	  "'max_amount': 5, 'currency': 'USD'}, {'name': 'd', 'tools': "
	  "['x'], 'window': 60, 'max_amount': '1'}]"
	  "}",
	  { "$.limits[0]", "$.limits[1].max_amount", "$.limits[2].max_amount",
	    "$.limits[3]" },
	  "keep one" },
	{ "limit_currency_and_count",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': [{'name': 'a', 'tools': ['x'], 'window': 60, "
	  "'max_count': 1, 'currency': 'USD'}, {'name': 'b', 'tools': "
	  "['x'], 'window': 60, 'max_amount': '1', 'currency': 'usd'}, "
	  "{'name': 'c', 'tools': ['x'], 'window': 60, 'max_count': 0}, "
	  "{'name': 'd', 'tools': ['x'], 'window': 60, 'max_count': 1, "
	  "'maximum': 5}]}",
	  { "$.limits[0].currency", "$.limits[1].currency",
	    "$.limits[2].max_count", "$.limits[3].maximum" },
	  "goes only with" },
	{ "limit_over",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': [{'name': 'a', 'over': 'allow', 'tools': ['x'], "
	  "'window': 60, 'max_count': 1}, {'name': 'b', 'over': {}, "
	  "'tools': ['x'], 'window': 60, 'max_count': 1}, {'name': 'c', "
	  "'over': {'approvals': 1, 'approvers': []}, 'tools': ['x'], "
	  "'window': 60, 'max_count': 1}]}",
	  { "$.limits[0].over", "$.limits[1].over", "$.limits[1].over",
	    "$.limits[2].over.approvers" },
	  "must not be empty" },
	{ "limit_over_details",
	  "{'principals': {'p': {'roles': []}}, 'roles': {'fin': {}}, "
	  "'limits': [{'name': 'a', 'over': {'approvals': 1, 'approvers': "
	  "['ghost']}, 'tools': ['x'], 'window': 60, 'max_count': 1}, "
	  "{'name': 'b', 'over': {'approvals': 0, 'approvers': ['fin']}, "
	  "'tools': ['x'], 'window': 60, 'max_count': 1}, {'name': 'c', "
	  "'over': {'approvals': 1, 'approvers': ['fin'], 'x': 1}, 'tools': "
	  "['x'], 'window': 60, 'max_count': 1}]}",
	  { "$.limits[0].over.approvers[0]", "$.limits[1].over.approvals",
	    "$.limits[2].over.x" },
	  "not defined in $.roles" },
	{ NULL, NULL, { NULL }, NULL }
};

static char *
unquote(const char *s)
{
	char	*d = strdup(s), *p;

	assert(d != NULL);
	for (p = d; *p; p++)
		if (*p == '\'')
			*p = '"';
	return (d);
}

static void
test_validation_cases(void)
{
	const struct vcase	*c;
	struct policy		*p;
	json_t			*errors, *e;
	char			*doc, *dump;
	size_t			 n, i, k;
	int			 ok;

	for (c = vcases; c->name != NULL; c++) {
		doc = unquote(c->doc);
		errors = NULL;
		p = policy_parse(doc, strlen(doc), &errors);
		CHECK(p == NULL, "%s: accepted", c->name);
		policy_free(p);
		CHECK(json_is_array(errors), "%s: no error list", c->name);
		if (!json_is_array(errors)) {
			free(doc);
			continue;
		}
		for (n = 0; n < 6 && c->paths[n] != NULL; n++)
			;
		ok = json_array_size(errors) == n;
		for (i = 0; ok && i < n; i++) {
			e = json_array_get(errors, i);
			ok = json_is_string(json_object_get(e, "message")) &&
			    strcmp(json_string_value(json_object_get(e,
			    "path")), c->paths[i]) == 0;
		}
		/* the named message must appear somewhere */
		if (ok && c->msg != NULL) {
			for (ok = 0, k = 0; k < n; k++) {
				e = json_array_get(errors, k);
				if (strstr(json_string_value(json_object_get(e,
				    "message")), c->msg) != NULL)
					ok = 1;
			}
		}
		if (!ok) {
			dump = json_dumps(errors, JSON_INDENT(1));
			CHECK(0, "%s: got %s", c->name, dump);
			free(dump);
		} else
			passed++;
		json_decref(errors);
		free(doc);
	}
}

static void
expect_refused_at(const char *name, const char *text, size_t len,
    const char *path)
{
	json_t		*errors = NULL;
	struct policy	*p = policy_parse(text, len, &errors);

	CHECK(p == NULL, "%s: accepted", name);
	policy_free(p);
	CHECK(json_array_size(errors) >= 1 && strcmp(json_string_value(
	    json_object_get(json_array_get(errors, 0), "path")), path) == 0,
	    "%s: first path is not %s", name, path);
	json_decref(errors);
}

/* Bounds: too many principals, roles, rules, currencies, tiers; too big. */
static void
test_validation_bounds(void)
{
	json_t	*doc, *prs, *ros, *rules, *cur, *tiers, *role;
	char	*text, name[32];
	int	 i;

	/* 33 tiers, 65 currencies and 10001 rules in one document */
	doc = json_object();
	prs = json_object();
	ros = json_object();
	rules = json_array();
	cur = json_object();
	tiers = json_array();
	for (i = 0; i < 33; i++) {
		snprintf(name, sizeof(name), "%d", i + 1);
		json_array_append_new(tiers, json_pack("{s:s, s:i}", "max",
		    name, "approvals", 0));
	}
	json_object_set_new(cur, "USD", tiers);
	for (i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "C%c%c", 'A' + i / 26,
		    'A' + i % 26);
		json_object_set_new(cur, name, json_pack("[{s:s, s:i}]",
		    "max", "1", "approvals", 0));
	}
	json_array_append_new(rules, json_pack("{s:s, s:o}", "tool", "a",
	    "currencies", cur));
	for (i = 1; i < 10001; i++)
		json_array_append_new(rules, json_pack("{s:s}", "tool", "b"));
	role = json_pack("{s:o}", "rules", rules);
	json_object_set_new(ros, "r", role);
	json_object_set_new(doc, "principals", prs);
	json_object_set_new(doc, "roles", ros);
	text = json_dumps(doc, JSON_COMPACT);
	{
		json_t *errors = NULL;
		struct policy *p = policy_parse(text, strlen(text), &errors);
		const char *want[] = { "$.roles.r.rules",
		    "$.roles.r.rules[0].currencies",
		    "$.roles.r.rules[0].currencies.USD" };
		size_t k;

		CHECK(p == NULL && json_array_size(errors) == 3,
		    "bounds: %zu errors", json_array_size(errors));
		for (k = 0; k < 3 && k < json_array_size(errors); k++)
			CHECK(strcmp(json_string_value(json_object_get(
			    json_array_get(errors, k), "path")), want[k]) == 0,
			    "bounds path %zu", k);
		policy_free(p);
		json_decref(errors);
	}
	free(text);
	json_decref(doc);

	/* 100001 principals; 10001 roles */
	doc = json_object();
	prs = json_object();
	ros = json_object();
	for (i = 0; i < 100001; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		json_object_set_new(prs, name, json_pack("{s:[]}", "roles"));
	}
	for (i = 0; i < 10001; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		json_object_set_new(ros, name, json_object());
	}
	json_object_set_new(doc, "principals", prs);
	json_object_set_new(doc, "roles", ros);
	text = json_dumps(doc, JSON_COMPACT);
	{
		json_t *errors = NULL;
		struct policy *p = policy_parse(text, strlen(text), &errors);

		CHECK(p == NULL && json_array_size(errors) == 2 &&
		    strcmp(json_string_value(json_object_get(json_array_get(
		    errors, 0), "path")), "$.principals") == 0 &&
		    strcmp(json_string_value(json_object_get(json_array_get(
		    errors, 1), "path")), "$.roles") == 0,
		    "principal/role bounds");
		policy_free(p);
		json_decref(errors);
	}
	free(text);
	json_decref(doc);

	/* size cap, checked before parsing */
	text = malloc(POLICY_MAX_BYTES + 2);
	assert(text != NULL);
	memset(text, ' ', POLICY_MAX_BYTES + 1);
	memcpy(text, "{\"principals\": {}, \"roles\": {}}", 31);
	expect_refused_at("too_big", text, POLICY_MAX_BYTES + 1, "$");
	free(text);

	/* an embedded NUL or invalid UTF-8 is refused */
	expect_refused_at("nul", "{\"principals\": {}, \"roles\": {}}\0",
	    32, "$");
	expect_refused_at("nul_in_string",
	    "{\"principals\": {\"a\\u0000\": {\"roles\": []}}, "
	    "\"roles\": {}}", 53, "$");
	expect_refused_at("bad_utf8",
	    "{\"principals\": {\"\xff\": {\"roles\": []}}, \"roles\": {}}",
	    48, "$");
	expect_refused_at("null", NULL, 0, "$");

	/* errors may be NULL */
	CHECK(policy_parse("{}", 2, NULL) == NULL, "NULL errors");
}

/* Every proto/examples/policy-*.json validates. */
static void
test_examples(void)
{
	char		 dir[4096], rel[8192];
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	snprintf(dir, sizeof(dir), "%s/proto/examples", root);
	if ((d = opendir(dir)) == NULL) {
		CHECK(0, "no %s", dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (strncmp(de->d_name, "policy-", 7) != 0 || l < 5 ||
		    strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		snprintf(rel, sizeof(rel), "proto/examples/%s", de->d_name);
		policy_free(load_file(rel));
		n++;
	}
	closedir(d);
	CHECK(n >= 1, "no example policies found");
}

/* ---- evaluation ---- */

struct ecase {
	const char	*who;
	const char	*tool;
	const char	*value;		/* NULL: no amount */
	const char	*currency;
	enum outcome	 outcome;
	enum reason	 reason;
	int		 approvals;
	const char	*role;		/* deciding role, NULL: none */
	int		 rule;
	int		 tier;
	const char	*tier_max;
	const char	*approver;	/* first approver role (pending) */
};

#define A	OUTCOME_ALLOW
#define P	OUTCOME_PENDING
#define D	OUTCOME_DENY

/*
 * Evaluate who calling tool with args given as JSON text (NULL: none),
 * passed both parsed and as the exact text, and an optional amount claim
 * (value NULL: none).
 */
static void
eval(const struct policy *p, const char *who, const char *tool,
    const char *args_text, const char *value, const char *currency,
    struct evaluation *ev)
{
	struct policy_call	 call;
	struct amount		 amt;
	json_t			*args = NULL;
	json_error_t		 jerr;

	memset(&call, 0, sizeof(call));
	call.principal = who;
	call.tool = tool;
	if (args_text != NULL) {
		args = json_loads(args_text, JSON_REJECT_DUPLICATES, &jerr);
		if (args == NULL) {
			fprintf(stderr, "bad test args %s: %s\n", args_text,
			    jerr.text);
			exit(1);
		}
		call.args = args;
		call.args_json = args_text;
		call.args_json_len = strlen(args_text);
	}
	if (value != NULL) {
		memset(&amt, 0, sizeof(amt));
		assert(amount_parse_value(value, strlen(value), &amt) == 0);
		snprintf(amt.currency, sizeof(amt.currency), "%s", currency);
		call.amount = &amt;
		call.amount_text = value;
	}
	policy_evaluate(p, &call, ev);
	json_decref(args);
}

/* How a table's amount reaches the policy. */
enum amode {
	AMOUNT_CLAIM,	/* the "amount" claim only (v1) */
	AMOUNT_ARGS,	/* {"amount": V, "currency": C} in args only */
	AMOUNT_BOTH	/* both, equal */
};

static void
run_ecases(const struct policy *p, const char *set, const struct ecase *c,
    enum amode mode)
{
	static const char *const modes[] = { "claim", "args", "both" };
	struct evaluation	 ev;
	char			 args[128];
	int			 ok;

	for (; c->who != NULL || c->tool != NULL; c++) {
		args[0] = '\0';
		if (mode != AMOUNT_CLAIM && c->value != NULL)
			snprintf(args, sizeof(args), "{\"amount\": \"%s\", "
			    "\"currency\": \"%s\"}", c->value, c->currency);
		else if (mode != AMOUNT_CLAIM)
			snprintf(args, sizeof(args), "{\"to\": \"x\"}");
		eval(p, c->who, c->tool, args[0] ? args : NULL,
		    mode != AMOUNT_ARGS ? c->value : NULL, c->currency, &ev);
		ok = ev.error == REASON_OK;
		/* the amount judged is the one given, as written */
		if (c->value != NULL && c->tier >= 0)
			ok = ok && ev.has_amount && strcmp(ev.amount_text,
			    c->value) == 0 && strcmp(ev.amount.currency,
			    c->currency) == 0;
		ok = ok && ev.outcome == c->outcome && ev.reason == c->reason &&
		    ev.approvals_required == c->approvals &&
		    ev.rule_index == c->rule && ev.tier_index == c->tier;
		ok = ok && (c->role == NULL ? ev.role == NULL :
		    ev.role != NULL && strcmp(ev.role, c->role) == 0);
		ok = ok && (c->tier_max == NULL ? ev.tier_max == NULL :
		    ev.tier_max != NULL && strcmp(ev.tier_max,
		    c->tier_max) == 0);
		if (c->outcome == P)
			ok = ok && ev.approval_ttl > 0 &&
			    ev.n_approver_roles >= 1 &&
			    strcmp(ev.approver_roles[0], c->approver) == 0;
		else
			ok = ok && ev.n_approver_roles == 0;
		if (ev.role != NULL)
			ok = ok && ev.rule_tool != NULL;
		CHECK(ok, "%s (%s): %s %s %s %s: got outcome %d %s approvals "
		    "%d role %s rule %d tier %d max %s", set, modes[mode],
		    c->who, c->tool,
		    c->value ? c->value : "-", c->currency ? c->currency : "-",
		    ev.outcome, reason_code(ev.reason), ev.approvals_required,
		    ev.role ? ev.role : "-", ev.rule_index, ev.tier_index,
		    ev.tier_max ? ev.tier_max : "-");
	}
}

static const struct ecase example_cases[] = {
	/* USD tiers 1000/0, 10000/1, 100000/2, boundaries inclusive */
	{ "agent-payments", "payments.transfer", "0", "USD", A,
	  R_POLICY_ALLOW, 0, "payments-agent", 0, 0, "1000.00", NULL },
	{ "agent-payments", "payments.transfer", "1000.00", "USD", A,
	  R_POLICY_ALLOW, 0, "payments-agent", 0, 0, "1000.00", NULL },
	{ "agent-payments", "payments.transfer", "1000.000001", "USD", P,
	  R_APPROVAL_REQUIRED, 1, "payments-agent", 0, 1, "10000.00",
	  "finance-approver" },
	{ "agent-payments", "payments.transfer", "10000.00", "USD", P,
	  R_APPROVAL_REQUIRED, 1, "payments-agent", 0, 1, "10000.00",
	  "finance-approver" },
	{ "agent-payments", "payments.transfer", "10000.01", "USD", P,
	  R_APPROVAL_REQUIRED, 2, "payments-agent", 0, 2, "100000.00",
	  "finance-approver" },
	{ "agent-payments", "payments.transfer", "100000.00", "USD", P,
	  R_APPROVAL_REQUIRED, 2, "payments-agent", 0, 2, "100000.00",
	  "finance-approver" },
	{ "agent-payments", "payments.transfer", "100000.000001", "USD", D,
	  R_AMOUNT_OVER_LIMIT, 0, "payments-agent", 0, 2, "100000.00", NULL },
	{ "agent-payments", "payments.transfer", "999999999999999.999999",
	  "USD", D, R_AMOUNT_OVER_LIMIT, 0, "payments-agent", 0, 2, "100000.00",
	  NULL },
	/* EUR tiers 500/0, 5000/1 */
	{ "agent-payments", "payments.transfer", "500.00", "EUR", A,
	  R_POLICY_ALLOW, 0, "payments-agent", 0, 0, "500.00", NULL },
	{ "agent-payments", "payments.transfer", "500.01", "EUR", P,
	  R_APPROVAL_REQUIRED, 1, "payments-agent", 0, 1, "5000.00",
	  "finance-approver" },
	{ "agent-payments", "payments.transfer", "5000.00", "EUR", P,
	  R_APPROVAL_REQUIRED, 1, "payments-agent", 0, 1, "5000.00",
	  "finance-approver" },
	{ "agent-payments", "payments.transfer", "5000.01", "EUR", D,
	  R_AMOUNT_OVER_LIMIT, 0, "payments-agent", 0, 1, "5000.00", NULL },
	/* other currencies, missing amount */
	{ "agent-payments", "payments.transfer", "1", "JPY", D,
	  R_CURRENCY_NOT_ALLOWED, 0, "payments-agent", 0, -1, NULL, NULL },
	{ "agent-payments", "payments.transfer", NULL, NULL, D,
	  R_AMOUNT_REQUIRED, 0, "payments-agent", 0, -1, NULL, NULL },
	/* rules without currencies ignore the amount */
	{ "agent-payments", "crm.lookup", NULL, NULL, A,
	  R_POLICY_ALLOW, 0, "payments-agent", 1, -1, NULL, NULL },
	{ "agent-payments", "crm.lookup", "5", "USD", A,
	  R_POLICY_ALLOW, 0, "payments-agent", 1, -1, NULL, NULL },
	/* default deny */
	{ "agent-payments", "crm.update", NULL, NULL, D,
	  R_NO_PERMISSION, 0, NULL, -1, -1, NULL, NULL },
	{ "agent-payments", "email.send", NULL, NULL, D,
	  R_NO_PERMISSION, 0, NULL, -1, -1, NULL, NULL },
	{ "agent-payments", "payments", "1", "USD", D,
	  R_NO_PERMISSION, 0, NULL, -1, -1, NULL, NULL },
	{ "agent-payments", "payments.transfer.fast", "1", "USD", D,
	  R_NO_PERMISSION, 0, NULL, -1, -1, NULL, NULL },
	{ "agent-payments", "Payments.transfer", "1", "USD", D,
	  R_NO_PERMISSION, 0, NULL, -1, -1, NULL, NULL },
	/* support agent */
	{ "agent-support", "crm.lookup", NULL, NULL, A,
	  R_POLICY_ALLOW, 0, "support-agent", 0, -1, NULL, NULL },
	{ "agent-support", "crm.update", NULL, NULL, A,
	  R_POLICY_ALLOW, 0, "support-agent", 1, -1, NULL, NULL },
	{ "agent-support", "email.send", NULL, NULL, P,
	  R_APPROVAL_REQUIRED, 1, "support-agent", 2, -1, NULL,
	  "support-approver" },
	{ "agent-support", "payments.transfer", "1", "USD", D,
	  R_NO_PERMISSION, 0, NULL, -1, -1, NULL, NULL },
	/* approvers, operators and tools are not agents */
	{ "approver-alice", "payments.transfer", "1", "USD", D,
	  R_NO_PERMISSION, 0, NULL, -1, -1, NULL, NULL },
	{ "operator-olga", "crm.lookup", NULL, NULL, D,
	  R_NO_PERMISSION, 0, NULL, -1, -1, NULL, NULL },
	{ "tool-payments", "payments.transfer", "1", "USD", D,
	  R_NO_PERMISSION, 0, NULL, -1, -1, NULL, NULL },
	/* unknown principals */
	{ "agent-unknown", "crm.lookup", NULL, NULL, D,
	  R_UNKNOWN_PRINCIPAL, 0, NULL, -1, -1, NULL, NULL },
	{ "", "crm.lookup", NULL, NULL, D,
	  R_UNKNOWN_PRINCIPAL, 0, NULL, -1, -1, NULL, NULL },
	{ "AGENT-PAYMENTS", "crm.lookup", NULL, NULL, D,
	  R_UNKNOWN_PRINCIPAL, 0, NULL, -1, -1, NULL, NULL },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL }
};

static void
test_example(void)
{
	struct policy		*p = load_file("policies/example.json");
	struct evaluation	 ev;

	/* payments.transfer binds its amount to /amount and /currency */
	run_ecases(p, "example", example_cases, AMOUNT_ARGS);
	run_ecases(p, "example", example_cases, AMOUNT_BOTH);

	/* pending carries the rule's ttl and its approvers */
	eval(p, "agent-payments", "payments.transfer",
	    "{\"amount\": 5000, \"currency\": \"USD\"}", NULL, NULL, &ev);
	CHECK(ev.outcome == P && ev.approval_ttl == 3600 &&
	    ev.n_approver_roles == 1 && ev.amount_from_args &&
	    strcmp(ev.amount_text, "5000") == 0 &&
	    strcmp(ev.rule_tool, "payments.transfer") == 0, "pending details");
	/* a claim beside no args is not the amount the tool executes */
	eval(p, "agent-payments", "payments.transfer", NULL, "1.00", "USD",
	    &ev);
	CHECK(ev.outcome == D && ev.reason == R_AMOUNT_REQUIRED &&
	    ev.error == REASON_OK && ev.has_amount && !ev.amount_from_args &&
	    strcmp(ev.amount_text, "1.00") == 0, "claim without args amount");
	/* declared 1.00, executed 50000: refused, not decided */
	eval(p, "agent-payments", "payments.transfer",
	    "{\"amount\": \"50000\", \"currency\": \"USD\"}", "1.00",
	    "USD", &ev);
	CHECK(ev.outcome == D && ev.error == E_AMOUNT_MISMATCH &&
	    ev.reason == E_AMOUNT_MISMATCH && strstr(ev.message, "1 USD") &&
	    strstr(ev.message, "50000 USD"), "declared vs executed: %s",
	    ev.message);
	eval(p, "agent-payments", "payments.transfer",
	    "{\"amount\": \"1\", \"currency\": \"\"}", NULL, NULL, &ev);
	CHECK(ev.error == E_INVALID_AMOUNT && strstr(ev.message, "/currency"),
	    "empty currency in args: %s", ev.message);
	eval(p, NULL, "crm.lookup", NULL, NULL, NULL, &ev);
	CHECK(ev.outcome == D && ev.reason == R_UNKNOWN_PRINCIPAL, "NULL who");
	eval(p, "agent-support", NULL, NULL, NULL, NULL, &ev);
	CHECK(ev.outcome == D && ev.reason == R_NO_PERMISSION, "NULL tool");
	policy_evaluate(p, NULL, &ev);
	CHECK(ev.outcome == D && ev.reason == R_UNKNOWN_PRINCIPAL, "NULL call");

	/* helpers */
	CHECK(policy_is_approver(p, "approver-alice"), "alice approves");
	CHECK(policy_is_approver(p, "approver-bob"), "bob approves");
	CHECK(policy_is_approver(p, "approver-carol"), "carol approves");
	CHECK(!policy_is_approver(p, "agent-payments"), "agent approves");
	CHECK(!policy_is_approver(p, "operator-olga"), "olga approves");
	CHECK(!policy_is_approver(p, "nobody"), "nobody approves");
	CHECK(policy_is_operator(p, "operator-olga"), "olga operates");
	CHECK(!policy_is_operator(p, "approver-alice"), "alice operates");
	CHECK(!policy_is_operator(p, "nobody"), "nobody operates");
	CHECK(policy_may_redeem(p, "tool-payments", "payments.transfer"),
	    "tool redeems");
	CHECK(policy_may_redeem(p, "tool-payments", "payments.refund.x"),
	    "tool redeems nested");
	CHECK(!policy_may_redeem(p, "tool-payments", "payments"),
	    "prefix alone");
	CHECK(!policy_may_redeem(p, "tool-payments", "crm.lookup"),
	    "tool redeems crm");
	CHECK(!policy_may_redeem(p, "agent-payments", "payments.transfer"),
	    "agent redeems");
	CHECK(policy_has_role(p, "approver-alice", "finance-approver"),
	    "has_role");
	CHECK(!policy_has_role(p, "approver-alice", "support-approver"),
	    "has_role other");
	CHECK(!policy_has_role(p, "nobody", "operator"), "has_role nobody");
	CHECK(policy_knows(p, "agent-support") && !policy_knows(p, "x"),
	    "knows");
	CHECK(!policy_is_redacted(p, "payments.transfer", "iban"),
	    "no redaction in the demo");
	policy_free(p);
}

static const char policy_rules[] =
    "{'principals': {"
    "  'a': {'roles': ['r1', 'r2']},"
    "  'b': {'roles': ['r2', 'r1']},"
    "  't': {'roles': ['r4']},"
    "  'dis': {'roles': ['r1', 'ops', 'ap'], 'disabled': true},"
    "  'en': {'roles': ['ops', 'ap'], 'disabled': false},"
    "  'none': {'roles': []}"
    " },"
    " 'roles': {"
    "  'ap': {}, 'ap2': {},"
    "  'ops': {'operator': true, 'redeem': ['svc.*', 'pay.send']},"
    "  'r1': {'rules': ["
    "    {'tool': 'svc.*', 'approvals': 2, 'approvers': ['ap']},"
    "    {'tool': 'svc.danger', 'effect': 'deny'},"
    "    {'tool': 'pay.send', 'approvers': ['ap'],"
    "     'currencies': {'USD': [{'max': '100', 'approvals': 1}]}},"
    "    {'tool': 'tie.x', 'approvals': 1, 'approvers': ['ap']},"
    "    {'tool': 'deep.a.b.*'}"
    "  ]},"
    "  'r2': {'rules': ["
    "    {'tool': 'svc.read', 'approvals': 1, 'approvers': ['ap2'],"
    "     'approval_ttl': 60},"
    "    {'tool': 'svc.read.fast'},"
    "    {'tool': 'pay.send', 'approvers': ['ap2'],"
    "     'currencies': {'EUR': [{'max': '100', 'approvals': 1}]}},"
    "    {'tool': 'pay.*',"
    "     'currencies': {'USD': [{'max': '10', 'approvals': 0}]}},"
    "    {'tool': 'tie.x', 'approvals': 1, 'approvers': ['ap2']},"
    "    {'tool': 'svc.write.*', 'effect': 'deny'},"
    "    {'tool': 'deep.*', 'effect': 'allow', 'approvals': 3,"
    "     'approvers': ['ap']}"
    "  ]},"
    "  'r4': {'rules': ["
    "    {'tool': 'tie.*', 'approvals': 1, 'approvers': ['ap']},"
    "    {'tool': 'tie.x', 'approvals': 1, 'approvers': ['ap2']},"
    "    {'tool': 'tie.x', 'approvals': 0, 'effect': 'allow'},"
    "    {'tool': 'tie.y', 'approvals': 0}"
    "  ]}"
    " },"
    " 'redact': {'pay.*': ['iban', 'account'], 'crm.update': ['note']}"
    "}";

static const struct ecase rules_cases[] = {
	/* fewest approvals wins across roles */
	{ "a", "svc.read", NULL, NULL, P, R_APPROVAL_REQUIRED, 1, "r2", 0,
	  -1, NULL, "ap2" },
	{ "a", "svc.write", NULL, NULL, P, R_APPROVAL_REQUIRED, 2, "r1", 0,
	  -1, NULL, "ap" },
	{ "a", "svc.read.fast", NULL, NULL, A, R_POLICY_ALLOW, 0, "r2", 1,
	  -1, NULL, NULL },
	/* deny overrides, from either role, exact or prefix */
	{ "a", "svc.danger", NULL, NULL, D, R_DENIED_BY_RULE, 0, "r1", 1, -1,
	  NULL, NULL },
	{ "a", "svc.write.x", NULL, NULL, D, R_DENIED_BY_RULE, 0, "r2", 5, -1,
	  NULL, NULL },
	{ "b", "svc.danger", NULL, NULL, D, R_DENIED_BY_RULE, 0, "r1", 1, -1,
	  NULL, NULL },
	/* "svc.*" needs "svc." and one more character */
	{ "a", "svc", NULL, NULL, D, R_NO_PERMISSION, 0, NULL, -1, -1, NULL,
	  NULL },
	{ "a", "svcx.read", NULL, NULL, D, R_NO_PERMISSION, 0, NULL, -1, -1,
	  NULL, NULL },
	{ "a", "svc.", NULL, NULL, D, R_NO_PERMISSION, 0, NULL, -1, -1, NULL,
	  NULL },
	/* nested prefixes: deep.* (3) and deep.a.b.* (0) */
	{ "a", "deep.a.b.c", NULL, NULL, A, R_POLICY_ALLOW, 0, "r1", 4, -1,
	  NULL, NULL },
	{ "a", "deep.a.b", NULL, NULL, P, R_APPROVAL_REQUIRED, 3, "r2", 6,
	  -1, NULL, "ap" },
	{ "a", "deep.a.b.c.d.e", NULL, NULL, A, R_POLICY_ALLOW, 0, "r1", 4,
	  -1, NULL, NULL },
	/* amounts across roles: the cheapest count wins */
	{ "a", "pay.send", "50", "USD", P, R_APPROVAL_REQUIRED, 1, "r1", 2, 0,
	  "100", "ap" },
	{ "a", "pay.send", "5", "USD", A, R_POLICY_ALLOW, 0, "r2", 3, 0, "10",
	  NULL },
	{ "a", "pay.send", "50", "EUR", P, R_APPROVAL_REQUIRED, 1, "r2", 2, 0,
	  "100", "ap2" },
	/* failures: the furthest, then the first in order */
	{ "a", "pay.send", "500", "USD", D, R_AMOUNT_OVER_LIMIT, 0, "r1", 2, 0,
	  "100", NULL },
	{ "a", "pay.send", "500", "EUR", D, R_AMOUNT_OVER_LIMIT, 0, "r2", 2, 0,
	  "100", NULL },
	{ "a", "pay.send", "1", "JPY", D, R_CURRENCY_NOT_ALLOWED, 0, "r1", 2,
	  -1, NULL, NULL },
	{ "b", "pay.send", "1", "JPY", D, R_CURRENCY_NOT_ALLOWED, 0, "r2", 2,
	  -1, NULL, NULL },
	{ "a", "pay.send", NULL, NULL, D, R_AMOUNT_REQUIRED, 0, "r1", 2, -1,
	  NULL, NULL },
	{ "a", "pay.other", "11", "USD", D, R_AMOUNT_OVER_LIMIT, 0, "r2", 3, 0,
	  "10", NULL },
	/* ties: first role on the principal, then first rule */
	{ "a", "tie.x", NULL, NULL, P, R_APPROVAL_REQUIRED, 1, "r1", 3, -1,
	  NULL, "ap" },
	{ "b", "tie.x", NULL, NULL, P, R_APPROVAL_REQUIRED, 1, "r2", 4, -1,
	  NULL, "ap2" },
	{ "t", "tie.z", NULL, NULL, P, R_APPROVAL_REQUIRED, 1, "r4", 0, -1,
	  NULL, "ap" },
	{ "t", "tie.x", NULL, NULL, A, R_POLICY_ALLOW, 0, "r4", 2, -1,
	  NULL, NULL },
	{ "t", "tie.y", NULL, NULL, A, R_POLICY_ALLOW, 0, "r4", 3, -1,
	  NULL, NULL },
	/* disabled beats everything; no roles means nothing */
	{ "dis", "svc.read", NULL, NULL, D, R_PRINCIPAL_DISABLED, 0, NULL, -1,
	  -1, NULL, NULL },
	{ "dis", "svc.danger", NULL, NULL, D, R_PRINCIPAL_DISABLED, 0, NULL,
	  -1, -1, NULL, NULL },
	{ "none", "svc.read", NULL, NULL, D, R_NO_PERMISSION, 0, NULL, -1,
	  -1, NULL, NULL },
	{ "en", "svc.read", NULL, NULL, D, R_NO_PERMISSION, 0, NULL, -1,
	  -1, NULL, NULL },
	{ NULL, NULL, NULL, NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL }
};

static void
test_rules(void)
{
	char			*doc = unquote(policy_rules);
	struct policy		*p = load_text(doc);
	struct evaluation	 ev;

	run_ecases(p, "rules", rules_cases, AMOUNT_CLAIM);

	eval(p, "a", "svc.read", NULL, NULL, NULL, &ev);
	CHECK(ev.approval_ttl == 60, "ttl from the rule: %lld",
	    (long long)ev.approval_ttl);
	eval(p, "a", "svc.write", NULL, NULL, NULL, &ev);
	CHECK(ev.approval_ttl == POLICY_DEFAULT_TTL, "default ttl");

	/* disabled principals hold nothing */
	CHECK(policy_knows(p, "dis"), "disabled is known");
	CHECK(!policy_is_operator(p, "dis"), "disabled operator");
	CHECK(!policy_is_approver(p, "dis"), "disabled approver");
	CHECK(!policy_may_redeem(p, "dis", "svc.x"), "disabled redeem");
	CHECK(!policy_has_role(p, "dis", "ops"), "disabled has_role");
	CHECK(policy_is_operator(p, "en"), "enabled operator");
	CHECK(policy_is_approver(p, "en"), "enabled approver (ap)");
	CHECK(policy_may_redeem(p, "en", "svc.x") &&
	    policy_may_redeem(p, "en", "pay.send") &&
	    !policy_may_redeem(p, "en", "pay.other"), "redeem patterns");
	CHECK(!policy_is_approver(p, "t"), "r4 is no approver role");

	/* redaction */
	CHECK(policy_is_redacted(p, "pay.send", "iban"), "redact iban");
	CHECK(policy_is_redacted(p, "pay.x.y", "account"), "redact nested");
	CHECK(!policy_is_redacted(p, "pay.send", "amount"), "redact other");
	CHECK(!policy_is_redacted(p, "pay", "iban"), "redact bare prefix");
	CHECK(policy_is_redacted(p, "crm.update", "note"), "redact exact");
	CHECK(!policy_is_redacted(p, "crm.lookup", "note"), "redact tool");
	CHECK(!policy_is_redacted(p, "crm.update", "Note"), "redact case");

	policy_free(p);
	free(doc);
}

/* ---- v2: amounts in args (CONTRACT §8.1) ---- */

static const char policy_amounts[] =
    "{'principals': {'a': {'roles': ['pay']}},"
    " 'roles': {'ap': {}, 'pay': {'rules': ["
    "  {'tool': 't.str', 'amount_from': {'value': '/amount',"
    "   'currency': '/currency'}, 'approvers': ['ap'],"
    "   'currencies': {'USD': [{'max': '1000', 'approvals': 0},"
    "                          {'max': '100000', 'approvals': 1}],"
    "                  'EUR': [{'max': '10', 'approvals': 0}]}},"
    "  {'tool': 't.minor', 'amount_from': {'value': '/cents',"
    "   'currency': 'EUR', 'scale': 2},"
    "   'currencies': {'EUR': [{'max': '1000.00', 'approvals': 0},"
    "                          {'max': '999999999999999.99',"
    "                           'approvals': 0}]}},"
    "  {'tool': 't.six', 'amount_from': {'value': '/n', 'currency': 'USD',"
    "   'scale': 6}, 'currencies': {'USD': [{'max': "
    "   '999999999999999.999999', 'approvals': 0}]}},"
    "  {'tool': 't.edge', 'amount_from': {'value': '/v', 'currency': 'USD'},"
    "   'approvers': ['ap'],"
    "   'currencies': {'USD': [{'max': '12345678901234.55', 'approvals': 0},"
    "                          {'max': '12345678901234.56', 'approvals': 1}]}},"
    "  {'tool': 't.nested', 'amount_from': {'value': '/pay/a~1b/0',"
    "   'currency': '/pay/cur'},"
    "   'currencies': {'USD': [{'max': '10', 'approvals': 0}]}},"
    "  {'tool': 't.plain', 'amount_from': {'value': '/amount',"
    "   'currency': 'USD'}},"
    "  {'tool': 't.claim', 'currencies': {'USD': [{'max': '10',"
    "   'approvals': 0}]}}"
    " ]}}}";

struct acase {
	const char	*tool;
	const char	*args;		/* JSON text, ' for "; NULL: no args */
	const char	*claim;		/* "VALUE CUR", or NULL */
	enum reason	 error;		/* REASON_OK: decided */
	enum outcome	 outcome;
	enum reason	 reason;
	int		 from_args;	/* the amount came from args */
	const char	*text;		/* amount_text, NULL: no amount */
	const char	*currency;
};

static const struct acase acases[] = {
	/* strings in the amount grammar, kept as written */
	{ "t.str", "{'amount': '1000.00', 'currency': 'USD'}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "1000.00", "USD" },
	{ "t.str", "{'amount': '1000.000001', 'currency': 'USD'}", NULL,
	  REASON_OK, P, R_APPROVAL_REQUIRED, 1, "1000.000001", "USD" },
	{ "t.str", "{'amount': '0', 'currency': 'EUR'}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "0", "EUR" },
	/* JSON numbers, read from their text */
	{ "t.str", "{'amount': 1000.00, 'currency': 'USD'}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "1000.00", "USD" },
	{ "t.str", "{'amount': 0.1, 'currency': 'USD'}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "0.1", "USD" },
	{ "t.str", "{'currency': 'USD', 'amount': 100000}", NULL,
	  REASON_OK, P, R_APPROVAL_REQUIRED, 1, "100000", "USD" },
	{ "t.str", "{'amount': 12345678901234.56, 'currency': 'USD'}", NULL,
	  REASON_OK, D, R_AMOUNT_OVER_LIMIT, 1, "12345678901234.56", "USD" },
	/* exact: a double would make this 12345678901234.560546875 */
	{ "t.edge", "{'v': 12345678901234.56}", NULL,
	  REASON_OK, P, R_APPROVAL_REQUIRED, 1, "12345678901234.56", "USD" },
	{ "t.edge", "{'v': 12345678901234.55}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "12345678901234.55", "USD" },
	{ "t.edge", "{'v': '12345678901234.560001'}", NULL,
	  REASON_OK, D, R_AMOUNT_OVER_LIMIT, 1, "12345678901234.560001",
	  "USD" },
	/* outside the grammar: 400 invalid_amount */
	{ "t.str", "{'amount': 1e3, 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': 1E+3, 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': -5, 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': -0, 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': 1.1234567, 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': 1234567890123456, 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': '1e3', 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': '-1', 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': '01', 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': ' 1', 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': '', 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': {'v': 1}, 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': [1], 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': true, 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': null, 'currency': 'USD'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	/* the currency pointer must find a code */
	{ "t.str", "{'amount': '1', 'currency': 'usd'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': '1', 'currency': 'USDX'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': '1', 'currency': 840}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.str", "{'amount': '1', 'currency': 'JPY'}", NULL,
	  REASON_OK, D, R_CURRENCY_NOT_ALLOWED, 1, "1", "JPY" },
	/* missing members: deny amount_required */
	{ "t.str", "{'currency': 'USD'}", NULL,
	  REASON_OK, D, R_AMOUNT_REQUIRED, 0, NULL, NULL },
	{ "t.str", "{'amount': '5'}", NULL,
	  REASON_OK, D, R_AMOUNT_REQUIRED, 0, NULL, NULL },
	{ "t.str", NULL, NULL,
	  REASON_OK, D, R_AMOUNT_REQUIRED, 0, NULL, NULL },
	{ "t.str", "{'amount': '5'}", "5 USD",
	  REASON_OK, D, R_AMOUNT_REQUIRED, 0, "5", "USD" },
	/* a claim beside args must be equal: value exactly, and currency */
	{ "t.str", "{'amount': '1000.00', 'currency': 'USD'}", "1000 USD",
	  REASON_OK, A, R_POLICY_ALLOW, 1, "1000.00", "USD" },
	{ "t.str", "{'amount': 1000, 'currency': 'USD'}", "1000.000000 USD",
	  REASON_OK, A, R_POLICY_ALLOW, 1, "1000", "USD" },
	{ "t.str", "{'amount': '50000', 'currency': 'USD'}", "1.00 USD",
	  E_AMOUNT_MISMATCH, D, E_AMOUNT_MISMATCH, 0, "1.00", "USD" },
	{ "t.str", "{'amount': '1000.000001', 'currency': 'USD'}", "1000 USD",
	  E_AMOUNT_MISMATCH, D, E_AMOUNT_MISMATCH, 0, "1000", "USD" },
	{ "t.str", "{'amount': '5', 'currency': 'USD'}", "5 EUR",
	  E_AMOUNT_MISMATCH, D, E_AMOUNT_MISMATCH, 0, "5", "EUR" },
	/* minor units */
	{ "t.minor", "{'cents': 123456}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "1234.56", "EUR" },
	{ "t.minor", "{'cents': 100000}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "1000.00", "EUR" },
	{ "t.minor", "{'cents': '5'}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "0.05", "EUR" },
	{ "t.minor", "{'cents': 0}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "0.00", "EUR" },
	{ "t.minor", "{'cents': 99999999999999999}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "999999999999999.99", "EUR" },
	{ "t.minor", "{'cents': '100000000000000000'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.minor", "{'cents': 12.5}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.minor", "{'cents': '12.50'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.minor", "{'cents': 1e2}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.minor", "{'cents': '012'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.minor", "{'cents': -1}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	{ "t.minor", "{'cents': 123456}", "1234.56 EUR",
	  REASON_OK, A, R_POLICY_ALLOW, 1, "1234.56", "EUR" },
	{ "t.minor", "{'cents': 123456}", "123456 EUR",
	  E_AMOUNT_MISMATCH, D, E_AMOUNT_MISMATCH, 0, "123456", "EUR" },
	{ "t.six", "{'n': '999999999999999999999'}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "999999999999999.999999", "USD" },
	{ "t.six", "{'n': '1'}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "0.000001", "USD" },
	{ "t.six", "{'n': '1000000000000000000000'}", NULL,
	  E_INVALID_AMOUNT, D, E_INVALID_AMOUNT, 0, NULL, NULL },
	/* nested pointers, escaped names */
	{ "t.nested", "{'pay': {'a/b': ['7.5'], 'cur': 'USD'}}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "7.5", "USD" },
	{ "t.nested", "{'pay': {'a/b': [], 'cur': 'USD'}}", NULL,
	  REASON_OK, D, R_AMOUNT_REQUIRED, 0, NULL, NULL },
	/* a rule without tiers still finds (and carries) its amount */
	{ "t.plain", "{'amount': '5'}", NULL,
	  REASON_OK, A, R_POLICY_ALLOW, 1, "5", "USD" },
	{ "t.plain", "{}", NULL,
	  REASON_OK, D, R_AMOUNT_REQUIRED, 0, NULL, NULL },
	/* v1: a rule without amount_from judges the claim, not args */
	{ "t.claim", "{'amount': '50000', 'currency': 'USD'}", "5 USD",
	  REASON_OK, A, R_POLICY_ALLOW, 0, "5", "USD" },
	{ NULL, NULL, NULL, 0, 0, 0, 0, NULL, NULL }
};

static void
test_amount_from(void)
{
	char			*doc = unquote(policy_amounts), *args;
	struct policy		*p = load_text(doc);
	const struct acase	*c;
	struct evaluation	 ev;
	struct policy_call	 call;
	char			 value[32], cur[4];
	json_t			*j;
	int			 ok;

	for (c = acases; c->tool != NULL; c++) {
		args = c->args ? unquote(c->args) : NULL;
		value[0] = '\0';
		if (c->claim != NULL)
			assert(sscanf(c->claim, "%31s %3s", value, cur) == 2);
		eval(p, "a", c->tool, args, c->claim ? value : NULL, cur, &ev);
		ok = ev.error == c->error && ev.outcome == c->outcome &&
		    ev.reason == c->reason &&
		    ev.amount_from_args == c->from_args &&
		    (c->text == NULL ? !ev.has_amount : ev.has_amount &&
		    strcmp(ev.amount_text, c->text) == 0 &&
		    strcmp(ev.amount.currency, c->currency) == 0);
		/* a refusal says why, naming the member */
		if (c->error == E_INVALID_AMOUNT)
			ok = ok && strstr(ev.message, "args /") != NULL;
		CHECK(ok, "amount_from %s %s [%s]: got error %s outcome %d %s "
		    "amount %s %s (%d) %s", c->tool, c->args ? c->args : "-",
		    c->claim ? c->claim : "-", reason_code(ev.error),
		    ev.outcome, reason_code(ev.reason),
		    ev.has_amount ? ev.amount_text : "-", ev.amount.currency,
		    ev.amount_from_args, ev.message);
		free(args);
	}

	/* without the text of args a number cannot be read exactly */
	assert((j = json_loads("{\"amount\": 5, \"currency\": \"USD\"}", 0,
	    NULL)) != NULL);
	memset(&call, 0, sizeof(call));
	call.principal = "a";
	call.tool = "t.str";
	call.args = j;
	policy_evaluate(p, &call, &ev);
	CHECK(ev.error == E_INVALID_AMOUNT, "number without args_json: %s",
	    reason_code(ev.error));
	json_decref(j);
	policy_free(p);
	free(doc);
}

/* ---- v2: conditions and deny rules (CONTRACT §8.2, §8 intro) ---- */

static const char policy_conds[] =
    "{'principals': {'a': {'roles': ['c', 'd']}},"
    " 'roles': {'ap': {}, 'd': {'rules': ["
    "  {'tool': 'd.x', 'effect': 'deny',"
    "   'args': {'/to': {'one_of': ['evil']}}},"
    "  {'tool': 'd.*'},"
    "  {'tool': 'd.ticket', 'effect': 'deny',"
    "   'args': {'/ticket': {'present': false}}},"
    "  {'tool': 'd.all', 'effect': 'deny'},"
    "  {'tool': 'd.amt', 'effect': 'deny',"
    "   'args': {'/amount': {'min': '100'}}},"
    "  {'tool': 'd.amt',"
    "   'amount_from': {'value': '/amount', 'currency': 'USD'},"
    "   'currencies': {'USD': [{'max': '1000', 'approvals': 0}]}}"
    " ]},"
    " 'c': {'rules': ["
    "  {'tool': 'c.oneof', 'args': {'/cur': {'one_of': ['USD', 1, null, true,"
    "   {'a': [1, 2], 'b': 'x'}]}}},"
    "  {'tool': 'c.notoneof', 'args': {'/to': {'not_one_of': ['evil', 2]}}},"
    "  {'tool': 'c.prefix',"
    "   'args': {'/iban': {'prefix': 'DE', 'max_length': 22}}},"
    "  {'tool': 'c.suffix', 'args': {'/email': {'suffix': '@example.com'}}},"
    "  {'tool': 'c.range', 'args': {'/n': {'min': '10', 'max': '100.5'}}},"
    "  {'tool': 'c.present', 'args': {'/ok': {'present': true},"
    "   '/bad': {'present': false}}},"
    "  {'tool': 'c.each', 'args': {'/items': {'each': {'max': '10'}}}},"
    "  {'tool': 'c.each2',"
    "   'args': {'/m': {'each': {'each': {'one_of': [1]}}}}},"
    "  {'tool': 'c.whole', 'args': {'': {'one_of': [{'x': 1}]}}},"
    "  {'tool': 'c.pick', 'args': {'/to': {'one_of': ['a']}}},"
    "  {'tool': 'c.pick', 'approvals': 1, 'approvers': ['ap']},"
    "  {'tool': 'c.rank', 'args': {'/x': {'present': true}}},"
    "  {'tool': 'c.rank',"
    "   'currencies': {'USD': [{'max': '1', 'approvals': 0}]}},"
    "  {'tool': 'c.first',"
    "   'args': {'/a': {'prefix': 'x'}, '/b': {'prefix': 'y'}}}"
    " ]}}}";

struct ccase {
	const char	*tool;
	const char	*args;		/* ' for " */
	enum outcome	 outcome;
	enum reason	 reason;
	int		 rule;		/* deciding rule index, -1 none */
	const char	*pointer;	/* failed_pointer, NULL: none */
	const char	*condition;
	const char	*where;		/* in the message, NULL: not checked */
};

static const struct ccase ccases[] = {
	/* one_of: JSON equality, across types */
	{ "c.oneof", "{'cur': 'USD'}", A, R_POLICY_ALLOW, 0, NULL, NULL, NULL },
	{ "c.oneof", "{'cur': 'usd'}", D, R_ARGS_NOT_ALLOWED, 0, "/cur",
	  "one_of", "args /cur " },
	{ "c.oneof", "{'cur': 1}", A, R_POLICY_ALLOW, 0, NULL, NULL, NULL },
	{ "c.oneof", "{'cur': 1.0}", A, R_POLICY_ALLOW, 0, NULL, NULL, NULL },
	{ "c.oneof", "{'cur': 10e-1}", A, R_POLICY_ALLOW, 0, NULL, NULL, NULL },
	{ "c.oneof", "{'cur': '1'}", D, R_ARGS_NOT_ALLOWED, 0, "/cur",
	  "one_of", NULL },
	{ "c.oneof", "{'cur': null}", A, R_POLICY_ALLOW, 0, NULL, NULL, NULL },
	{ "c.oneof", "{'cur': true}", A, R_POLICY_ALLOW, 0, NULL, NULL, NULL },
	{ "c.oneof", "{'cur': false}", D, R_ARGS_NOT_ALLOWED, 0, "/cur",
	  "one_of", NULL },
	{ "c.oneof", "{'cur': {'b': 'x', 'a': [1.0, 2e0]}}", A, R_POLICY_ALLOW,
	  0, NULL, NULL, NULL },
	{ "c.oneof", "{'cur': {'a': [2, 1], 'b': 'x'}}", D, R_ARGS_NOT_ALLOWED,
	  0, "/cur", "one_of", NULL },
	{ "c.oneof", "{'cur': {'a': [1, 2]}}", D, R_ARGS_NOT_ALLOWED, 0, "/cur",
	  "one_of", NULL },
	{ "c.oneof", "{}", D, R_ARGS_NOT_ALLOWED, 0, "/cur", "one_of", NULL },
	{ "c.oneof", NULL, D, R_ARGS_NOT_ALLOWED, 0, "/cur", "one_of", NULL },
	/* not_one_of; missing fails it too */
	{ "c.notoneof", "{'to': 'good'}", A, R_POLICY_ALLOW, 1, NULL, NULL,
	  NULL },
	{ "c.notoneof", "{'to': '2'}", A, R_POLICY_ALLOW, 1, NULL, NULL, NULL },
	{ "c.notoneof", "{'to': 'evil'}", D, R_ARGS_NOT_ALLOWED, 1, "/to",
	  "not_one_of", NULL },
	{ "c.notoneof", "{'to': 2.0}", D, R_ARGS_NOT_ALLOWED, 1, "/to",
	  "not_one_of", NULL },
	{ "c.notoneof", "{}", D, R_ARGS_NOT_ALLOWED, 1, "/to", "not_one_of",
	  NULL },
	/* prefix, max_length in code points */
	{ "c.prefix", "{'iban': 'DE89370400440532013000'}", A, R_POLICY_ALLOW,
	  2, NULL, NULL, NULL },
	{ "c.prefix", "{'iban': 'DE\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	  "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	  "\\u00e9\\u00e9\\u00e9"
	  "\\u00e9\\u00e9\\u00e9\\u00e9'}", A, R_POLICY_ALLOW, 2, NULL, NULL,
	  NULL },
	{ "c.prefix", "{'iban': 'DE893704004405320130001'}", D,
	  R_ARGS_NOT_ALLOWED, 2, "/iban", "max_length", NULL },
	{ "c.prefix", "{'iban': 'FR7630006000011234567890189'}", D,
	  R_ARGS_NOT_ALLOWED, 2, "/iban", "prefix", NULL },
	{ "c.prefix", "{'iban': 5}", D, R_ARGS_NOT_ALLOWED, 2, "/iban",
	  "prefix", NULL },
	/* suffix */
	{ "c.suffix", "{'email': 'bob@example.com'}", A, R_POLICY_ALLOW, 3,
	  NULL, NULL, NULL },
	{ "c.suffix", "{'email': '@example.com'}", A, R_POLICY_ALLOW, 3, NULL,
	  NULL, NULL },
	{ "c.suffix", "{'email': 'bob@example.com.evil.org'}", D,
	  R_ARGS_NOT_ALLOWED, 3, "/email", "suffix", NULL },
	{ "c.suffix", "{'email': 'example.com'}", D, R_ARGS_NOT_ALLOWED, 3,
	  "/email", "suffix", NULL },
	/* min and max: numbers and decimal strings, exactly */
	{ "c.range", "{'n': 10}", A, R_POLICY_ALLOW, 4, NULL, NULL, NULL },
	{ "c.range", "{'n': '10.000000'}", A, R_POLICY_ALLOW, 4, NULL, NULL,
	  NULL },
	{ "c.range", "{'n': 100.5}", A, R_POLICY_ALLOW, 4, NULL, NULL, NULL },
	{ "c.range", "{'n': 1e2}", A, R_POLICY_ALLOW, 4, NULL, NULL, NULL },
	{ "c.range", "{'n': 9.999999}", D, R_ARGS_NOT_ALLOWED, 4, "/n", "min",
	  NULL },
	{ "c.range", "{'n': 100.5000001}", D, R_ARGS_NOT_ALLOWED, 4, "/n",
	  "max", NULL },
	{ "c.range", "{'n': '100.500001'}", D, R_ARGS_NOT_ALLOWED, 4, "/n",
	  "max", NULL },
	{ "c.range", "{'n': 1e21}", D, R_ARGS_NOT_ALLOWED, 4, "/n", "max",
	  NULL },
	{ "c.range", "{'n': -50}", D, R_ARGS_NOT_ALLOWED, 4, "/n", "min",
	  NULL },
	{ "c.range", "{'n': 5e-324}", D, R_ARGS_NOT_ALLOWED, 4, "/n", "min",
	  NULL },
	{ "c.range", "{'n': '-50'}", D, R_ARGS_NOT_ALLOWED, 4, "/n", "min",
	  NULL },
	{ "c.range", "{'n': '1e2'}", D, R_ARGS_NOT_ALLOWED, 4, "/n", "min",
	  NULL },
	{ "c.range", "{'n': [50]}", D, R_ARGS_NOT_ALLOWED, 4, "/n", "min",
	  NULL },
	/* present */
	{ "c.present", "{'ok': 1}", A, R_POLICY_ALLOW, 5, NULL, NULL, NULL },
	{ "c.present", "{'ok': null}", A, R_POLICY_ALLOW, 5, NULL, NULL, NULL },
	{ "c.present", "{}", D, R_ARGS_NOT_ALLOWED, 5, "/ok", "present", NULL },
	{ "c.present", "{'ok': 1, 'bad': 2}", D, R_ARGS_NOT_ALLOWED, 5, "/bad",
	  "present", NULL },
	/* each: every element; the message names the element */
	{ "c.each", "{'items': [1, '2.5', 10]}", A, R_POLICY_ALLOW, 6, NULL,
	  NULL, NULL },
	{ "c.each", "{'items': []}", A, R_POLICY_ALLOW, 6, NULL, NULL, NULL },
	{ "c.each", "{'items': [1, 20, 3]}", D, R_ARGS_NOT_ALLOWED, 6,
	  "/items", "max", "args /items/1 " },
	{ "c.each", "{'items': 'x'}", D, R_ARGS_NOT_ALLOWED, 6, "/items",
	  "each", "args /items " },
	{ "c.each", "{}", D, R_ARGS_NOT_ALLOWED, 6, "/items", "each", NULL },
	{ "c.each2", "{'m': [[1], [1, 1.0]]}", A, R_POLICY_ALLOW, 7, NULL,
	  NULL, NULL },
	{ "c.each2", "{'m': [[1], [1, 2]]}", D, R_ARGS_NOT_ALLOWED, 7, "/m",
	  "one_of", "args /m/1/1 " },
	{ "c.each2", "{'m': [1]}", D, R_ARGS_NOT_ALLOWED, 7, "/m", "each",
	  "args /m/0 " },
	/* "" is args itself */
	{ "c.whole", "{'x': 1}", A, R_POLICY_ALLOW, 8, NULL, NULL, NULL },
	{ "c.whole", "{'x': 1, 'y': 2}", D, R_ARGS_NOT_ALLOWED, 8, "",
	  "one_of", NULL },
	/* another rule may still allow */
	{ "c.pick", "{'to': 'a'}", A, R_POLICY_ALLOW, 9, NULL, NULL, NULL },
	{ "c.pick", "{'to': 'b'}", P, R_APPROVAL_REQUIRED, 10, NULL, NULL,
	  NULL },
	/* conditions that fail outrank amounts that fail */
	{ "c.rank", "{}", D, R_ARGS_NOT_ALLOWED, 11, "/x", "present", NULL },
	/* the first failed pointer, in the rule's order */
	{ "c.first", "{'a': 'z', 'b': 'z'}", D, R_ARGS_NOT_ALLOWED, 13, "/a",
	  "prefix", NULL },
	{ "c.first", "{'a': 'x', 'b': 'z'}", D, R_ARGS_NOT_ALLOWED, 13, "/b",
	  "prefix", NULL },
	/* deny rules: with conditions, only the calls that meet them */
	{ "d.x", "{'to': 'evil'}", D, R_DENIED_BY_RULE, 0, NULL, NULL, NULL },
	{ "d.x", "{'to': 'good'}", A, R_POLICY_ALLOW, 1, NULL, NULL, NULL },
	{ "d.x", "{}", A, R_POLICY_ALLOW, 1, NULL, NULL, NULL },
	{ "d.ticket", "{}", D, R_DENIED_BY_RULE, 2, NULL, NULL, NULL },
	{ "d.ticket", "{'ticket': 'T-1'}", A, R_POLICY_ALLOW, 1, NULL, NULL,
	  NULL },
	{ "d.all", "{'to': 'good'}", D, R_DENIED_BY_RULE, 3, NULL, NULL,
	  NULL },
	{ "d.amt", "{'amount': '500'}", D, R_DENIED_BY_RULE, 4, NULL, NULL,
	  NULL },
	{ "d.amt", "{'amount': '50'}", A, R_POLICY_ALLOW, 1, NULL, NULL, NULL },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, NULL }
};

static void
test_conditions(void)
{
	char			*doc = unquote(policy_conds), *args;
	struct policy		*p = load_text(doc);
	const struct ccase	*c;
	struct evaluation	 ev;
	int			 ok;

	for (c = ccases; c->tool != NULL; c++) {
		args = c->args ? unquote(c->args) : NULL;
		eval(p, "a", c->tool, args, NULL, NULL, &ev);
		ok = ev.error == REASON_OK && ev.outcome == c->outcome &&
		    ev.reason == c->reason && ev.rule_index == c->rule;
		ok = ok && (c->pointer == NULL ? ev.failed_pointer == NULL :
		    ev.failed_pointer != NULL && strcmp(ev.failed_pointer,
		    c->pointer) == 0 && strcmp(ev.failed_condition,
		    c->condition) == 0 && ev.message[0] != '\0');
		if (c->where != NULL)
			ok = ok && strstr(ev.message, c->where) != NULL;
		if (c->reason == R_DENIED_BY_RULE)
			ok = ok && ev.role != NULL &&
			    strcmp(ev.role, "d") == 0;
		CHECK(ok, "conditions %s %s: got outcome %d %s rule %d "
		    "pointer %s %s: %s", c->tool, c->args ? c->args : "-",
		    ev.outcome, reason_code(ev.reason), ev.rule_index,
		    ev.failed_pointer ? ev.failed_pointer : "-",
		    ev.failed_condition ? ev.failed_condition : "-",
		    ev.message);
		free(args);
	}
	/* a deny rule outranks an amount_mismatch on another rule */
	eval(p, "a", "d.amt", "{\"amount\": \"500\"}", "1", "USD", &ev);
	CHECK(ev.error == REASON_OK && ev.reason == R_DENIED_BY_RULE,
	    "deny before mismatch: %s", reason_code(ev.reason));
	eval(p, "a", "d.amt", "{\"amount\": \"50\"}", "1", "USD", &ev);
	CHECK(ev.error == E_AMOUNT_MISMATCH, "mismatch: %s",
	    reason_code(ev.error));
	policy_free(p);
	free(doc);
}

/* ---- v2: the limits that apply, and their keys (CONTRACT §8.3) ---- */

static const char policy_limits[] =
    "{'principals': {'a': {'roles': []}, 'b': {'roles': []},"
    "  'al': {'roles': ['ap']}},"
    " 'roles': {'ap': {}},"
    " 'limits': ["
    "  {'name': 'l-agent', 'tools': ['pay.*'], 'window': 86400,"
    "   'max_count': 5},"
    "  {'name': 'l_all', 'tools': ['pay.send'], 'per': [], 'window': 60,"
    "   'max_count': 1},"
    "  {'name': 'l-payee', 'tools': ['pay.send', 'mail.*'],"
    "   'per': ['agent', '/to', 'tool'], 'window': 3600, 'currency': 'USD',"
    "   'max_amount': '5000.00', 'over': {'approvals': 1,"
    "   'approvers': ['ap']}},"
    "  {'name': 'l-only-b', 'tools': ['pay.*'], 'principals': ['b'],"
    "   'window': 31536000, 'max_count': 3, 'over': 'deny'}"
    " ]}";

struct lcase {
	const char	*who, *tool, *args;	/* args: ' for " */
	const char	*want[5];		/* "name key" in order */
};

static const struct lcase lcases[] = {
	{ "a", "pay.send", "{'to': 'x'}",
	  { "l-agent [\"a\"]", "l_all []",
	    "l-payee [\"a\",\"x\",\"pay.send\"]" } },
	{ "b", "pay.send", "{'to': 'x'}",
	  { "l-agent [\"b\"]", "l_all []",
	    "l-payee [\"b\",\"x\",\"pay.send\"]", "l-only-b [\"b\"]" } },
	{ "a", "pay.refund", "{'to': 'x'}", { "l-agent [\"a\"]" } },
	{ "a", "pay", NULL, { NULL } },
	{ "a", "crm.lookup", "{'to': 'x'}", { NULL } },
	{ "a", "Pay.send", NULL, { NULL } },
	/* a missing per member is null: it shares one counter */
	{ "a", "mail.send", "{}", { "l-payee [\"a\",null,\"mail.send\"]" } },
	{ "a", "mail.send", NULL, { "l-payee [\"a\",null,\"mail.send\"]" } },
	{ "a", "mail.send", "{'to': null}",
	  { "l-payee [\"a\",null,\"mail.send\"]" } },
	/* JSON values in RFC 8785 form: equal values, equal keys */
	{ "a", "mail.x", "{'to': 1.0}", { "l-payee [\"a\",1,\"mail.x\"]" } },
	{ "a", "mail.x", "{'to': '1'}",
	  { "l-payee [\"a\",\"1\",\"mail.x\"]" } },
	{ "a", "mail.x", "{'to': {'b': 1, 'a': [1.0, 'e\\u0301\\\"']}}",
	  { "l-payee [\"a\",{\"a\":[1,\"e\xcc\x81\\\"\"],\"b\":1},"
	    "\"mail.x\"]" } },
	/* long values are hashed (SHA-256 of their RFC 8785 text) */
	{ "a", "mail.x", "{'to': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxx'}",
	  { "l-payee [\"a\",{\"sha256\":\"HASH\"},\"mail.x\"]" } },
	{ NULL, NULL, NULL, { NULL } }
};

static void
test_limits(void)
{
	char				*doc = unquote(policy_limits), *args;
	char				 want[512], hex[65], *t, *h;
	struct policy			*p = load_text(doc);
	const struct lcase		*c;
	const struct policy_limit	*l;
	struct policy_limit_use		*u;
	struct policy_call		 call;
	json_t				*j;
	size_t				 n, i, k;
	int				 ok;

	CHECK(policy_limit_count(p) == 4 && policy_limit_at(p, 4) == NULL,
	    "limit count");
	l = policy_limit_at(p, 0);
	CHECK(l != NULL && strcmp(l->name, "l-agent") == 0 && l->index == 0 &&
	    l->n_per == 1 && strcmp(l->per[0], "agent") == 0 &&
	    l->window == 86400 && !l->by_amount && l->max_count == 5 &&
	    l->over_approvals == 0 && l->n_principals == 0,
	    "l-agent: per defaults to agent");
	l = policy_limit_at(p, 1);
	CHECK(l != NULL && l->n_per == 0 && l->window == 60, "l_all: per []");
	l = policy_limit_at(p, 2);
	CHECK(l != NULL && l->by_amount && strcmp(l->max_amount_text,
	    "5000.00") == 0 && strcmp(l->max_amount.currency, "USD") == 0 &&
	    l->max_amount.whole == 5000 && l->over_approvals == 1 &&
	    l->n_over_approvers == 1 && strcmp(l->over_approvers[0], "ap") ==
	    0 && l->n_tools == 2, "l-payee fields");
	l = policy_limit_at(p, 3);
	CHECK(l != NULL && l->n_principals == 1 && l->over_approvals == 0 &&
	    l->window == 31536000, "l-only-b fields");

	for (c = lcases; c->who != NULL; c++) {
		args = c->args ? unquote(c->args) : NULL;
		memset(&call, 0, sizeof(call));
		call.principal = c->who;
		call.tool = c->tool;
		j = args ? json_loads(args, 0, NULL) : NULL;
		call.args = j;
		call.args_json = args;
		call.args_json_len = args ? strlen(args) : 0;
		ok = policy_limits_for(p, &call, &u, &n) == 0;
		for (k = 0; k < 5 && c->want[k] != NULL; k++)
			;
		ok = ok && n == k;
		for (i = 0; ok && i < n; i++) {
			snprintf(want, sizeof(want), "%s", c->want[i]);
			if ((h = strstr(want, "HASH")) != NULL) {
				/* the hashed part: "to"'s RFC 8785 text */
				t = json_dumps(json_object_get(j, "to"),
				    JSON_ENCODE_ANY);
				canon_sha256_hex(t, strlen(t), hex);
				free(t);
				memmove(h + 64, h + 4, strlen(h + 4) + 1);
				memcpy(h, hex, 64);
			}
			snprintf(hex, sizeof(hex), "%s ", u[i].limit->name);
			ok = strncmp(want, hex, strlen(hex)) == 0 &&
			    strcmp(want + strlen(hex), u[i].key) == 0;
		}
		CHECK(ok, "limits for %s %s %s: %zu applied, first key %s",
		    c->who, c->tool, c->args ? c->args : "-", n,
		    n > 0 ? u[0].key : "-");
		policy_limit_uses_free(u, n);
		json_decref(j);
		free(args);
	}
	policy_free(p);
	free(doc);
}

/* ---- v2: policy check warnings (CONTRACT §8.4) ---- */

struct wcase {
	const char	*name;
	const char	*doc;		/* ' for " */
	const char	*want[6];	/* "code path" in order */
};

static const struct wcase wcases[] = {
	{ "nobody_approves",
	  "{'principals': {'a': {'roles': ['r']}},"
	  " 'roles': {'fin': {}, 'r': {'rules': [{'tool': 'x', 'approvals': 1,"
	  "  'approvers': ['fin']}, {'tool': 'y'}]}}}",
	  { "never_approvable $.roles.r.rules[0]" } },
	{ "too_few_for_the_top_tier_and_disabled_do_not_count",
	  "{'principals': {'a': {'roles': ['r']}, 'al': {'roles': ['fin']},"
	  "  'bo': {'roles': ['fin'], 'disabled': true}},"
	  " 'roles': {'fin': {}, 'r': {'rules': [{'tool': 'x',"
	  "  'approvers': ['fin'], 'currencies': {'USD': ["
	  "  {'max': '1', 'approvals': 1}, {'max': '2', 'approvals': 2}]}}]}}}",
	  { "never_approvable $.roles.r.rules[0]" } },
	{ "self_approver_and_then_too_few",
	  "{'principals': {'x y': {'roles': ['r', 'fin']},"
	  "  'al': {'roles': ['fin']}},"
	  " 'roles': {'fin': {}, 'r': {'rules': [{'tool': 'x', 'approvals': 2,"
	  "  'approvers': ['fin']}, {'tool': 'z', 'approvals': 1,"
	  "  'approvers': ['fin']}]}}}",
	  { "self_approver $.principals[\"x y\"]",
	    "never_approvable $.roles.r.rules[0]" } },
	{ "self_approver_with_enough_others",
	  "{'principals': {'x': {'roles': ['r', 'fin']},"
	  "  'al': {'roles': ['fin']}, 'bo': {'roles': ['fin']}},"
	  " 'roles': {'fin': {}, 'r': {'rules': [{'tool': 'x', 'approvals': 2,"
	  "  'approvers': ['fin']}]}}}",
	  { "self_approver $.principals.x" } },
	{ "limit_over_nobody",
	  "{'principals': {'a': {'roles': []}},"
	  " 'roles': {'fin': {}},"
	  " 'limits': [{'name': 'l', 'tools': ['x'], 'window': 60,"
	  "  'max_count': 1, 'over': {'approvals': 1, 'approvers': ['fin']}}]}",
	  { "never_approvable $.limits[0].over" } },
	{ "all_fine",
	  "{'principals': {'a': {'roles': ['r']}, 'al': {'roles': ['fin']}},"
	  " 'roles': {'fin': {}, 'r': {'rules': [{'tool': 'x', 'approvals': 1,"
	  "  'approvers': ['fin']}, {'tool': 'd', 'effect': 'deny'}]}}}",
	  { NULL } },
	{ NULL, NULL, { NULL } }
};

static void
test_warnings(void)
{
	const struct wcase	*c;
	struct policy		*p;
	json_t			*w, *e;
	char			*doc, got[300], *dump;
	size_t			 n, i;
	int			 ok;

	p = load_file("policies/example.json");
	w = policy_warnings(p);
	CHECK(json_is_array(w) && json_array_size(w) == 0,
	    "example.json has no warnings");
	json_decref(w);
	policy_free(p);

	for (c = wcases; c->name != NULL; c++) {
		doc = unquote(c->doc);
		p = load_text(doc);
		w = policy_warnings(p);
		for (n = 0; n < 6 && c->want[n] != NULL; n++)
			;
		ok = json_is_array(w) && json_array_size(w) == n;
		for (i = 0; ok && i < n; i++) {
			e = json_array_get(w, i);
			snprintf(got, sizeof(got), "%s %s",
			    json_string_value(json_object_get(e, "code")),
			    json_string_value(json_object_get(e, "path")));
			ok = strcmp(got, c->want[i]) == 0 &&
			    json_string_length(json_object_get(e,
			    "message")) > 20;
		}
		dump = json_dumps(w, JSON_INDENT(1));
		CHECK(ok, "warnings %s: got %s", c->name, dump);
		free(dump);
		json_decref(w);
		policy_free(p);
		free(doc);
	}
}

/* CONTRACT §9: rules may name MCP tools with upper case, matched
 * case-sensitively; tools/list offers what some allow rule matches and
 * no unconditional deny rule does; intents keep the strict grammar. */
static void
test_mcp_names(void)
{
	char		*doc = unquote("{'principals': {"
	    "'a': {'roles': ['pay', 'ro']}, 'b': {'roles': ['ro']}, "
	    "'d': {'roles': ['pay'], 'disabled': true}}, 'roles': {"
	    "'pay': {'rules': [{'tool': 'pay.Transfer', 'currencies': "
	    "{'USD': [{'max': '10.00', 'approvals': 0}]}}, "
	    "{'tool': 'crm.*'}, {'tool': 'crm.Secret', 'effect': 'deny'}, "
	    "{'tool': 'crm.Mail', 'effect': 'deny', "
	    "'args': {'/to': {'suffix': '@evil.example'}}}]}, "
	    "'ro': {'rules': [{'tool': 'pay.lookup', 'approvals': 1, "
	    "'approvers': ['pay']}]}}}");
	struct policy	*p = load_text(doc);
	struct policy_call call;
	struct evaluation ev;
	struct amount	 five;

	CHECK(policy_mcp_name_valid("pay.GetUser") &&
	    policy_mcp_name_valid("a-B_c.D9") && !policy_mcp_name_valid("a..B") &&
	    !policy_mcp_name_valid("A B") && !policy_mcp_name_valid("A.") &&
	    !policy_mcp_name_valid(NULL), "mcp grammar");
	CHECK(!policy_tool_name_valid("pay.GetUser"), "intent grammar strict");
	CHECK(amount_parse_value("5", 1, &five) == 0, "amount");
	memcpy(five.currency, "USD", 4);
	memset(&call, 0, sizeof(call));
	call.principal = "a";
	call.tool = "pay.Transfer";
	call.amount = &five;
	policy_evaluate(p, &call, &ev);
	CHECK(ev.outcome == OUTCOME_ALLOW, "upper-case rule allows");
	call.tool = "pay.transfer";
	policy_evaluate(p, &call, &ev);
	CHECK(ev.outcome == OUTCOME_DENY && ev.reason == R_NO_PERMISSION,
	    "matched case-sensitively");

	CHECK(policy_offers(p, "a", "pay.Transfer"), "offered: amount rule");
	CHECK(policy_offers(p, "a", "pay.lookup"), "offered: pending rule");
	CHECK(policy_offers(p, "a", "crm.Lookup"), "offered: prefix rule");
	CHECK(!policy_offers(p, "a", "crm.Secret"), "deny rule hides it");
	CHECK(policy_offers(p, "a", "crm.Mail"),
	    "a deny rule with conditions does not hide it");
	CHECK(!policy_offers(p, "a", "pay.transfer"), "case-sensitive");
	CHECK(!policy_offers(p, "b", "pay.Transfer"), "other role");
	CHECK(policy_offers(p, "b", "pay.lookup"), "b's own rule");
	CHECK(!policy_offers(p, "d", "pay.Transfer"), "disabled");
	CHECK(!policy_offers(p, "nobody", "pay.lookup"), "unknown");
	CHECK(!policy_offers(p, "a", "pay..x") && !policy_offers(p, "a", NULL),
	    "bad names");
	policy_free(p);
	free(doc);
}

static void
test_patterns(void)
{
	static const struct {
		const char	*pattern, *tool;
		int		 want;
	} m[] = {
		{ "a.b", "a.b", 1 }, { "a.b", "a.bc", 0 }, { "a.b", "a", 0 },
		{ "a.*", "a.b", 1 }, { "a.*", "a.b.c", 1 }, { "a.*", "a.", 0 },
		{ "a.*", "a", 0 }, { "a.*", "ab.c", 0 }, { "a.*", "b.a", 0 },
		{ "a.b.*", "a.b.c.d", 1 }, { "a.b.*", "a.bc.d", 0 },
		{ "payments.*", "payments.transfer", 1 },
	};
	static const struct {
		const char	*s;
		int		 want;
	} names[] = {
		{ "a", 1 }, { "crm.lookup", 1 }, { "a-b_c.d9", 1 },
		{ "", 0 }, { ".", 0 }, { "a.", 0 }, { ".a", 0 }, { "a..b", 0 },
		{ "A", 0 }, { "a b", 0 }, { "a.*", 0 }, { "a/b", 0 },
		{ "é", 0 },
	};
	char	 longname[200];
	size_t	 i;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		CHECK(policy_pattern_match(m[i].pattern, m[i].tool) ==
		    m[i].want, "match(%s, %s)", m[i].pattern, m[i].tool);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		CHECK(policy_tool_name_valid(names[i].s) == names[i].want,
		    "valid(%s)", names[i].s);
	memset(longname, 'a', sizeof(longname));
	longname[128] = '\0';
	CHECK(policy_tool_name_valid(longname), "128 chars");
	longname[128] = 'a';
	longname[129] = '\0';
	CHECK(!policy_tool_name_valid(longname), "129 chars");
	CHECK(!policy_tool_name_valid(NULL), "NULL name");
}

/* ---- names the policy knows (policy_names.c) ---- */

static void
test_names(void)
{
	static const struct {
		const char	*pattern;
		int		 known;
	} tools[] = {
		{ "payments.transfer", 1 }, { "payments.*", 1 },
		{ "crm.lookup", 1 }, { "crm.*", 1 }, { "crm.update", 1 },
		{ "crm.lookup.*", 1 }, { "crm", 0 }, { "payment.transfer", 0 },
		{ "payments", 0 }, { "paymentsx.*", 0 }, { "email.send", 1 },
		{ "email.*", 1 }, { "nope.*", 0 }, { "svc.op.x", 1 },
		{ "svc.*", 1 }, { "svcx.op", 0 },
	};
	static const struct {
		const char	*name, *closest;
	} agents[] = {
		{ "agent-paymnets", "agent-payments" },	/* a swap */
		{ "agent-payment", "agent-payments" },
		{ "agent-payments2", "agent-payments" },
		{ "Agent-Support", "agent-support" },
		{ "approver-alise", "approver-alice" },
		{ "zzzzzzzzzzzz", NULL },
		{ "x", NULL },
	};
	struct policy	*p = load_text("{\"principals\": {"
	    "\"agent-payments\": {\"roles\": [\"pay\"]},"
	    "\"agent-support\": {\"roles\": [\"sup\"]},"
	    "\"approver-alice\": {\"roles\": [\"fin\"]},"
	    "\"off\": {\"roles\": [\"pay\"], \"disabled\": true}},"
	    "\"roles\": {\"pay\": {\"rules\": [{\"tool\": \"payments.transfer\","
	    "\"approvals\": 1, \"approvers\": [\"fin\"]}, {\"tool\": \"svc.op.*\"}]},"
	    "\"sup\": {\"rules\": [{\"tool\": \"crm.*\"}, {\"tool\": \"email.send\","
	    "\"effect\": \"deny\"}]}, \"fin\": {}}}");
	const char	*c;
	char		 longname[300];
	size_t		 i;

	for (i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
		CHECK(policy_tool_known(p, tools[i].pattern) == tools[i].known,
		    "tool_known(%s)", tools[i].pattern);
	for (i = 0; i < sizeof(agents) / sizeof(agents[0]); i++) {
		c = policy_closest_principal(p, agents[i].name);
		CHECK(agents[i].closest == NULL ? c == NULL : c != NULL &&
		    strcmp(c, agents[i].closest) == 0, "closest(%s): %s",
		    agents[i].name, c ? c : "none");
	}
	/* a disabled principal is still one: a switch on it is no typo */
	CHECK(policy_knows(p, "off"), "disabled is known");
	c = policy_closest_tool(p, "payment.transfer");
	CHECK(c != NULL && strcmp(c, "payments.transfer") == 0,
	    "closest tool: %s", c ? c : "none");
	c = policy_closest_tool(p, "crm.*x");
	CHECK(c != NULL && strcmp(c, "crm.*") == 0, "closest pattern: %s",
	    c ? c : "none");
	CHECK(policy_closest_tool(p, "totally.different") == NULL,
	    "no close tool");
	/* long names: bounded work, and nothing closer than 8 edits */
	memset(longname, 'a', sizeof(longname));
	longname[255] = '\0';
	CHECK(policy_closest_principal(p, longname) == NULL, "long name");
	CHECK(policy_closest_principal(NULL, "x") == NULL, "no policy");
	CHECK(!policy_tool_known(NULL, "x"), "no policy tool");
	policy_free(p);
}

/* ---- concurrency and size ---- */

struct reader {
	const struct policy	*p;
	int			 bad;
};

static void *
reader_main(void *arg)
{
	static const char	 text[] =
	    "{\"amount\": 10000.01, \"currency\": \"USD\"}";
	struct reader		*r = arg;
	struct evaluation	 ev;
	struct policy_call	 call, mail;
	json_t			*args;
	int			 i;

	assert((args = json_loads(text, 0, NULL)) != NULL);
	memset(&call, 0, sizeof(call));
	call.principal = "agent-payments";
	call.tool = "payments.transfer";
	call.args = args;
	call.args_json = text;
	call.args_json_len = strlen(text);
	memset(&mail, 0, sizeof(mail));
	mail.principal = "agent-support";
	mail.tool = "email.send";
	for (i = 0; i < 20000; i++) {
		policy_evaluate(r->p, &call, &ev);
		if (ev.outcome != P || ev.approvals_required != 2 ||
		    strcmp(ev.tier_max, "100000.00") != 0 ||
		    strcmp(ev.amount_text, "10000.01") != 0)
			r->bad++;
		policy_evaluate(r->p, &mail, &ev);
		if (ev.outcome != P || ev.approvals_required != 1)
			r->bad++;
	}
	json_decref(args);
	return (NULL);
}

static void
test_threads(void)
{
	struct policy	*p = load_file("policies/example.json");
	struct reader	 r[4];
	pthread_t	 th[4];
	int		 i;

	for (i = 0; i < 4; i++) {
		r[i].p = p;
		r[i].bad = 0;
		assert(pthread_create(&th[i], NULL, reader_main, &r[i]) == 0);
	}
	for (i = 0; i < 4; i++) {
		assert(pthread_join(th[i], NULL) == 0);
		CHECK(r[i].bad == 0, "thread %d: %d bad answers", i, r[i].bad);
	}
	policy_free(p);
}

static double
since(const struct timespec *t0)
{
	struct timespec	 t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return ((double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e9);
}

/* 10,000 principals and a role of 10,000 rules, as the benchmark has. */
static void
test_big(void)
{
	json_t			*doc, *prs, *ros, *rules;
	struct policy		*p;
	struct evaluation	 ev;
	struct timespec		 t0;
	json_t			*errors = NULL;
	char			*text, name[64], tool[64];
	const char		*near;
	int			 i, bad = 0;
	double			 parse_s, eval_s;

	doc = json_object();
	prs = json_object();
	ros = json_object();
	rules = json_array();
	for (i = 0; i < 10000; i++) {
		snprintf(tool, sizeof(tool), "svc%d.op", i);
		json_array_append_new(rules, json_pack("{s:s, s:i, s:[s]}",
		    "tool", tool, "approvals", i % 3, "approvers", "ap"));
	}
	json_array_append_new(rules, json_pack("{s:s}", "tool", "wide.*"));
	json_object_set_new(ros, "big", json_pack("{s:o}", "rules", rules));
	json_object_set_new(ros, "ap", json_object());
	for (i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "agent-%d", i);
		json_object_set_new(prs, name, json_pack("{s:[s]}", "roles",
		    "big"));
	}
	json_object_set_new(doc, "principals", prs);
	json_object_set_new(doc, "roles", ros);
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	/* over 10,000 rules in one role is refused; 10,001 here is the
	 * limit + 1, so drop the wide rule by re-validating a trimmed doc */
	p = policy_parse(text, strlen(text), &errors);
	CHECK(p == NULL && json_array_size(errors) == 1, "10001 rules");
	json_decref(errors);
	errors = NULL;
	free(text);

	doc = json_object();
	prs = json_object();
	ros = json_object();
	rules = json_array();
	for (i = 0; i < 9999; i++) {
		snprintf(tool, sizeof(tool), "svc%d.op", i);
		json_array_append_new(rules, json_pack("{s:s, s:i, s:[s]}",
		    "tool", tool, "approvals", i % 3, "approvers", "ap"));
	}
	json_array_append_new(rules, json_pack("{s:s}", "tool", "wide.*"));
	json_object_set_new(ros, "big", json_pack("{s:o}", "rules", rules));
	json_object_set_new(ros, "ap", json_object());
	for (i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "agent-%d", i);
		json_object_set_new(prs, name, json_pack("{s:[s]}", "roles",
		    "big"));
	}
	json_object_set_new(doc, "principals", prs);
	json_object_set_new(doc, "roles", ros);
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	p = policy_parse(text, strlen(text), &errors);
	parse_s = since(&t0);
	CHECK(p != NULL, "big policy refused");
	free(text);
	if (p == NULL) {
		json_decref(errors);
		return;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 200000; i++) {
		snprintf(name, sizeof(name), "agent-%d", (i * 7) % 10000);
		snprintf(tool, sizeof(tool), "svc%d.op", i % 9999);
		eval(p, name, tool, NULL, NULL, NULL, &ev);
		if (ev.rule_index != i % 9999 ||
		    ev.approvals_required != (i % 9999) % 3)
			bad++;
	}
	eval(p, "agent-1", "wide.x.y", NULL, NULL, NULL, &ev);
	CHECK(ev.outcome == A && ev.rule_index == 9999, "wide prefix");
	eval(p, "agent-1", "svc1.op.more", NULL, NULL, NULL, &ev);
	CHECK(ev.outcome == D && ev.reason == R_NO_PERMISSION, "no scan");
	eval_s = since(&t0);
	CHECK(bad == 0, "big: %d bad answers", bad);
	/* generous: a linear scan would take ~10,000x longer per call */
	CHECK(eval_s < 5.0, "200000 evaluations took %.2fs", eval_s);
	printf("big policy: parse %.3fs, %.2f us per evaluation\n", parse_s,
	    eval_s * 1e6 / 200000);
	/* the kill switch's suggestion walks every name, boundedly */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK((near = policy_closest_principal(p, "agent-1234x")) != NULL &&
	    strcmp(near, "agent-1234") == 0, "closest of 10000: %s",
	    near ? near : "none");
	CHECK((near = policy_closest_tool(p, "svc123.opp")) != NULL &&
	    strcmp(near, "svc123.op") == 0, "closest tool of 10000");
	CHECK(since(&t0) < 2.0, "suggestions took %.2fs", since(&t0));
	policy_free(p);
}

int
main(int argc, char *argv[])
{
	const char	*env;

	if (argc > 1)
		root = argv[1];
	else if ((env = getenv("TOOLGATE_SOURCE_ROOT")) != NULL && *env)
		root = env;
	json_object_seed(0);

	test_validation_cases();
	test_validation_bounds();
	test_examples();
	test_patterns();
	test_mcp_names();
	test_example();
	test_rules();
	test_amount_from();
	test_conditions();
	test_limits();
	test_warnings();
	test_names();
	test_threads();
	test_big();

	printf("policy: %d passed, %d failed\n", passed, failed);
	return (failed == 0 ? 0 : 1);
}

/*
 * cmd_policy: toolgatectl policy check | apply | show.  A file is always
 * validated here with policy_parse before anything is sent or stored, so
 * an invalid policy is refused with the JSON path of each problem even
 * when the broker is down; what it warns about (policy_warnings: rules
 * nobody can approve, principals approving their own rules) is printed
 * as "warning:" lines that do not fail the command.  Offline (--db) goes
 * through store.c; online through GET/PUT /v1/policy.  Both print the
 * same lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "canon.h"
#include "clock.h"
#include "ctl.h"
#include "policy.h"
#include "store.h"

static int	policy_check(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);
static int	policy_apply(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);
static int	policy_show(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);

static const struct ctl_opt opts_none[] = { { NULL, NULL, NULL, 0 } };

const struct ctl_cmd cmd_policy[] = {
	{ "check", "policy check", "FILE",
	    "validate a policy file locally (no broker, no database); "
	    "warnings do not fail it",
	    "toolgatectl policy check policies/example.json",
	    opts_none, 1, policy_check, NULL },
	{ "apply", "policy apply", "FILE",
	    "validate, then store as the new policy version (--db: offline)",
	    "toolgatectl --db toolgate.db policy apply policies/example.json",
	    opts_none, 1, policy_apply, NULL },
	{ "show", "policy show", "", "print the current policy (--db: offline)",
	    "toolgatectl --cert operator.pem --key operator.key --ca ca.pem "
	    "policy show",
	    opts_none, 0, policy_show, NULL },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL }
};

/* Number of members (object) or elements (array) of doc[key]. */
static size_t
count_of(const char *text, size_t len, const char *key)
{
	json_t	*doc = json_loadb(text, len, 0, NULL), *j;
	size_t	 n;

	j = json_object_get(doc, key);
	n = json_is_array(j) ? json_array_size(j) : json_object_size(j);
	json_decref(doc);
	return (n);
}

/*
 * Read and validate path.  CTL_OK with *text and *len (caller frees) and
 * *warnings (a new array; printed as "warning:" lines on stderr); else
 * the problems are printed ("PATH: MESSAGE" on stderr, and with --json
 * {"valid": false, "problems": [...]} on stdout) and CTL_FAIL returned.
 */
static int
policy_load(const struct ctl *ctl, const char *path, char **text,
    size_t *len, json_t **warnings)
{
	struct policy	*p;
	json_t		*problems = NULL, *out;

	*warnings = NULL;
	if (ctl_read_file(path, POLICY_MAX_BYTES, text, len) == -1)
		return (CTL_USAGE);
	if ((p = policy_parse(*text, *len, &problems)) != NULL) {
		*warnings = policy_warnings(p);
		policy_free(p);
		if (*warnings == NULL) {
			free(*text);
			*text = NULL;
			return (ctl_fail("%s: out of memory", path));
		}
		out_warnings(*warnings);
		return (CTL_OK);
	}
	fprintf(stderr, "toolgatectl: %s: invalid policy\n", path);
	out_problems(problems);
	if (ctl->json) {
		out = json_pack("{sb so}", "valid", 0, "problems",
		    problems != NULL ? json_incref(problems) : json_array());
		out_json(out);
		json_decref(out);
	}
	json_decref(problems);
	free(*text);
	*text = NULL;
	return (CTL_FAIL);
}

static int
policy_check(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	char	*text;
	size_t	 len, np, nr, nl, nw;
	json_t	*out, *warnings;
	int	 rc;

	if ((rc = policy_load(ctl, a->pos[0], &text, &len, &warnings)) !=
	    CTL_OK)
		return (rc);
	np = count_of(text, len, "principals");
	nr = count_of(text, len, "roles");
	nl = count_of(text, len, "limits");
	nw = json_array_size(warnings);
	if (ctl->json) {
		out = json_pack("{sb sI sI sI sO}", "valid", 1, "principals",
		    (json_int_t)np, "roles", (json_int_t)nr, "limits",
		    (json_int_t)nl, "warnings", warnings);
		out_json(out);
		json_decref(out);
	} else {
		printf("policy OK: %zu principal%s, %zu role%s", np,
		    np == 1 ? "" : "s", nr, nr == 1 ? "" : "s");
		if (nl > 0)
			printf(", %zu limit%s", nl, nl == 1 ? "" : "s");
		if (nw > 0)
			printf(" (%zu warning%s)", nw, nw == 1 ? "" : "s");
		printf("\n");
	}
	json_decref(warnings);
	free(text);
	return (CTL_OK);
}

/* The {"version", "sha256"} answer of an apply, as lines or JSON. */
static int
print_applied(const struct ctl *ctl, const json_t *ans)
{
	if (ctl->json)
		out_json(ans);
	else
		printf("policy version %" JSON_INTEGER_FORMAT " applied "
		    "(sha256 %s)\n", json_integer_value(json_object_get(ans,
		    "version")), out_str(ans, "sha256"));
	return (CTL_OK);
}

static int
apply_offline(const struct ctl *ctl, const char *text, size_t len)
{
	struct decider	 d;
	struct store	*s;
	char		 actor[300], sha[SHA256_HEX_LEN + 1];
	int64_t		 version = 0;
	json_t		*ans;
	enum reason	 r;
	int		 rc;

	if ((rc = ctl_store_open(ctl, 1, &s)) != CTL_OK)
		return (rc);
	ctl_actor(actor, sizeof(actor));
	canon_sha256_hex(text, len, sha);
	decider_init(&d, s, "toolgatectl", NULL);
	r = lc_begin(&d) == -1 ? E_UNAVAILABLE : lc_finish(&d,
	    lc_policy_apply(&d, text, len, actor, clock_now(), &version));
	if (r != REASON_OK)
		rc = ctl_fail("%s: could not store the policy", ctl_db_name(ctl));
	else {
		ans = json_pack("{sI ss}", "version", (json_int_t)version,
		    "sha256", sha);
		rc = print_applied(ctl, ans);
		json_decref(ans);
	}
	decider_deinit(&d);
	store_close(s);
	return (rc);
}

static int
policy_apply(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	char	*text;
	size_t	 len;
	json_t	*ans, *warnings;
	int	 rc, status;

	if (ctl->db == NULL && (rc = ctl_need_identity(ctl, cmd)) != 0)
		return (rc);
	if ((rc = policy_load(ctl, a->pos[0], &text, &len, &warnings)) !=
	    CTL_OK)
		return (rc);
	json_decref(warnings);
	if (ctl->db != NULL)
		rc = apply_offline(ctl, text, len);
	else if ((rc = ctl_call(ctl, "PUT", "/v1/policy", "application/json",
	    text, len, &status, &ans)) == CTL_OK) {
		rc = print_applied(ctl, ans);
		json_decref(ans);
	}
	free(text);
	return (rc);
}

/* {"version", "sha256", "policy"}: "version N" and the policy, or JSON. */
static int
print_policy(const struct ctl *ctl, const json_t *ans)
{
	if (ctl->json) {
		out_json(ans);
		return (CTL_OK);
	}
	printf("version %" JSON_INTEGER_FORMAT "\n",
	    json_integer_value(json_object_get(ans, "version")));
	out_json(json_object_get(ans, "policy"));
	return (CTL_OK);
}

/* The stored policy as the API's {"version", "sha256", "policy"}. */
static int
show_offline(const struct ctl *ctl)
{
	struct store	*s;
	char		*body = NULL, sha[SHA256_HEX_LEN + 1];
	size_t		 len = 0;
	int64_t		 version;
	json_t		*ans = NULL;
	int		 rc;

	if ((rc = ctl_store_open(ctl, 0, &s)) != CTL_OK)
		return (rc);
	if (s->ops->policy_current(s, &version, &body, &len) == -1)
		rc = ctl_fail("%s: could not read the policy", ctl_db_name(ctl));
	else if (version == 0)
		rc = ctl_fail("%s: no policy applied yet", ctl_db_name(ctl));
	else {
		canon_sha256_hex(body, len, sha);
		ans = json_pack("{sI ss so}", "version", (json_int_t)version,
		    "sha256", sha, "policy", json_loadb(body, len, 0, NULL));
		rc = ans != NULL ? print_policy(ctl, ans) :
		    ctl_fail("%s: stored policy is not JSON", ctl_db_name(ctl));
	}
	json_decref(ans);
	free(body);
	store_close(s);
	return (rc);
}

static int
policy_show(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	json_t	*ans;
	int	 rc, status;

	if (ctl->db != NULL)
		return (show_offline(ctl));
	if ((rc = ctl_need_identity(ctl, cmd)) != 0)
		return (rc);
	if ((rc = ctl_call(ctl, "GET", "/v1/policy", NULL, NULL, 0, &status,
	    &ans)) != CTL_OK)
		return (rc);
	rc = print_policy(ctl, ans);
	json_decref(ans);
	return (rc);
}

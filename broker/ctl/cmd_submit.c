/*
 * cmd_submit: toolgatectl submit — build an intent from the flags, check it
 * against the contract's grammar locally (so mistakes are usage errors, not
 * round trips), sign it as a compact JWS with the caller's own key (iss is
 * the identity of --cert, alg follows from the key), POST it and print the
 * decision.  With --wait, a pending intent is followed with the broker's
 * long-poll (GET /v1/intents/ID?wait=) until it is decided or the time is
 * up; toolgatectl wait does the same for an intent submitted earlier.
 * Still pending at the end is exit 4, so scripts can tell it from a
 * refusal.  The amount value travels exactly as typed: no arithmetic;
 * numbers in --args keep their value (one RFC 8785 would change is
 * refused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "amount.h"
#include "canon.h"
#include "clock.h"
#include "ctl.h"
#include "file.h"
#include "ident.h"
#include "jose.h"
#include "jsonw.h"
#include "policy.h"

#define SUBMIT_MAX_TTL		300
#define SUBMIT_DEFAULT_TTL	60
#define SUBMIT_MAX_REASON	1024
#define SUBMIT_MAX_ARGS		(60 * 1024)
#define SUBMIT_MAX_WAIT		3600
#define SUBMIT_POLL_MAX		60	/* the broker's cap on ?wait= */
#define SUBMIT_POLL_SLACK	10	/* socket timeout beyond the wait */
#define WAIT_DEFAULT		300	/* toolgatectl wait --timeout */

const struct ctl_opt cmd_submit_opts[] = {
	{ "tool", "NAME", "tool to call, e.g. payments.transfer (required)", 0 },
	{ "amount", "VALUE", "decimal amount exactly as text, e.g. 12.50", 0 },
	{ "currency", "CODE", "currency of --amount, e.g. USD", 0 },
	{ "args", "JSON", "arguments for the tool, a JSON object; @FILE reads "
	    "it from FILE, - from standard input", 0 },
	{ "reason", "TEXT", "why, shown to approvers (<= 1024 characters)", 0 },
	{ "audience", "NAME", "the broker's audience (default toolgate)", 0 },
	{ "ttl", "SECONDS", "intent lifetime, 1..300 (default 60)", 0 },
	{ "wait", "SECONDS", "if approval is needed, print the pending id, "
	    "then wait 1..3600 s for the decision", 0 },
	{ NULL, NULL, NULL, 0 }
};

const struct ctl_opt cmd_wait_opts[] = {
	{ "timeout", "SECONDS", "give up after 0..3600 s (default 300; 0: "
	    "look once)", 0 },
	{ NULL, NULL, NULL, 0 }
};
enum { O_TOOL, O_AMOUNT, O_CURRENCY, O_ARGS, O_REASON, O_AUDIENCE, O_TTL,
	O_WAIT };

struct submit {
	const char	*tool;
	const char	*amount;
	const char	*currency;
	const char	*reason;
	const char	*audience;
	json_t		*args;		/* object or NULL */
	int64_t		 ttl;
	int64_t		 wait;		/* seconds; 0 = do not wait */
};

/* Characters (not bytes) of a UTF-8 string. */
static size_t
utf8_chars(const char *s)
{
	size_t	 n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return (n);
}

static int
submit_parse_ttl(const struct ctl_cmd *cmd, const char *v, int64_t *ttl)
{
	char	*end;
	long	 n;

	*ttl = SUBMIT_DEFAULT_TTL;
	if (v == NULL)
		return (0);
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < 1 || n > SUBMIT_MAX_TTL)
		return (ctl_usage(cmd, "--ttl must be 1..%d seconds",
		    SUBMIT_MAX_TTL));
	*ttl = n;
	return (0);
}

/* --args JSON, @FILE or - (standard input) into *args (an object or
 * NULL).  0 or the usage exit code (printed): a file that cannot be read
 * is a usage error too. */
int
ctl_parse_args(const struct ctl_cmd *cmd, const char *v, json_t **args)
{
	json_error_t		 jerr;
	enum canon_number	 bad;
	char			 where[128], *text = NULL, label[300] = "--args";
	const char		*path;
	size_t			 len;
	int			 rc = 0;

	*args = NULL;
	if (v == NULL)
		return (0);
	if (strcmp(v, "-") == 0 || v[0] == '@') {
		path = v[0] == '@' ? v + 1 : "-";
		if (ctl_read_file(path, SUBMIT_MAX_ARGS, &text, &len) == -1)
			return (CTL_USAGE);
		snprintf(label, sizeof(label), "--args from %s", v[0] == '@' ?
		    path : "standard input");
	} else if ((len = strlen(v)) > SUBMIT_MAX_ARGS)
		return (ctl_usage(cmd, "--args is too large"));
	else if ((text = strdup(v)) == NULL)
		return (ctl_fail("out of memory"));
	if ((*args = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL)
		rc = ctl_usage(cmd, "%s is not valid JSON: %s", label,
		    jerr.text);
	else if (!json_is_object(*args))
		rc = ctl_usage(cmd, "%s must be a JSON object", label);
	/* jansson has made doubles of the numbers: refuse here what the
	 * broker would refuse, rather than send a rounded value. */
	else if (canon_numbers_check(text, len, "", &bad, where,
	    sizeof(where)) != 0)
		rc = ctl_usage(cmd, "%s: the number at %s %s", label, where,
		    canon_number_problem(bad));
	free(text);
	if (rc != 0) {
		json_decref(*args);
		*args = NULL;
	}
	return (rc);
}

/* Flags into s, checked against the contract's claim rules; 0 or the
 * usage exit code (printed). */
static int
submit_parse(const struct ctl_cmd *cmd, const struct ctl_args *a,
    struct submit *s)
{
	struct amount	 am;
	int		 rc;

	memset(s, 0, sizeof(*s));
	s->tool = a->val[O_TOOL];
	s->amount = a->val[O_AMOUNT];
	s->currency = a->val[O_CURRENCY];
	s->reason = a->val[O_REASON];
	s->audience = a->val[O_AUDIENCE] ? a->val[O_AUDIENCE] : "toolgate";
	if (s->tool == NULL)
		return (ctl_usage(cmd, "--tool is required"));
	if (!policy_tool_name_valid(s->tool))
		return (ctl_usage(cmd, "bad tool name '%s' (want "
		    "[a-z0-9_-]+ parts joined by '.', at most 128)", s->tool));
	if ((s->amount == NULL) != (s->currency == NULL))
		return (ctl_usage(cmd, "--amount and --currency go together"));
	if (s->amount != NULL && amount_parse_value(s->amount,
	    strlen(s->amount), &am) == -1)
		return (ctl_usage(cmd, "bad amount '%s' (want a decimal like "
		    "12.50: no sign, exponent or more than 6 decimals)",
		    s->amount));
	if (s->currency != NULL && !amount_currency_valid(s->currency))
		return (ctl_usage(cmd, "bad currency '%s' (want three capital "
		    "letters like USD)", s->currency));
	if (s->reason != NULL && utf8_chars(s->reason) > SUBMIT_MAX_REASON)
		return (ctl_usage(cmd, "--reason is longer than %d characters",
		    SUBMIT_MAX_REASON));
	if (*s->audience == '\0')
		return (ctl_usage(cmd, "--audience is empty"));
	if ((rc = submit_parse_ttl(cmd, a->val[O_TTL], &s->ttl)) != 0 ||
	    (rc = ctl_parse_int(cmd, "--wait", a->val[O_WAIT], 1,
	    SUBMIT_MAX_WAIT, &s->wait)) != 0)
		return (rc);
	return (ctl_parse_args(cmd, a->val[O_ARGS], &s->args));
}

/* The intent's claims (new reference) or NULL (bad UTF-8 in a flag). */
static json_t *
submit_claims(const struct submit *s, const char *iss)
{
	unsigned char	 rnd[16];
	char		 jti[33];
	int64_t		 now = clock_now();
	json_t		*c;
	size_t		 i;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return (NULL);
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
	c = json_pack("{ss ss ss sI sI ss}", "iss", iss, "aud", s->audience,
	    "jti", jti, "iat", (json_int_t)now, "exp",
	    (json_int_t)(now + s->ttl), "tool", s->tool);
	if (c == NULL)
		return (NULL);
	if ((s->args != NULL && json_object_set(c, "args", s->args) == -1) ||
	    (s->amount != NULL && json_object_set_new(c, "amount",
	    json_pack("{ss ss}", "value", s->amount, "currency",
	    s->currency)) == -1) ||
	    (s->reason != NULL && json_object_set_new(c, "reason",
	    json_string(s->reason)) == -1)) {
		json_decref(c);
		return (NULL);
	}
	return (c);
}

/* Sign claims with --key into *jws (malloc'd).  0 or an exit code. */
static int
submit_sign(const struct ctl *ctl, json_t *claims, char **jws)
{
	EVP_PKEY	*key;
	const char	*why;
	char		 fwhy[256];
	enum jose_alg	 alg;
	json_t		*header = NULL;
	char		*payload = NULL;

	*jws = NULL;
	if (file_readable(ctl->key, fwhy, sizeof(fwhy)) == -1) {
		ctl_fail("--key %s: %s", ctl->key, fwhy);
		return (CTL_USAGE);
	}
	if ((key = jose_load_private_key(ctl->key, &why)) == NULL) {
		ctl_fail("--key %s: %s", ctl->key, why);
		return (CTL_USAGE);
	}
	/* alg comes from the key: ES256 for P-256, RS256 for RSA >= 2048. */
	if ((alg = jose_alg_for_key(key)) == JOSE_ALG_NONE_OK) {
		EVP_PKEY_free(key);
		ctl_fail("--key %s: key cannot sign intents (need EC P-256 or "
		    "RSA of 2048 bits or more)", ctl->key);
		return (CTL_USAGE);
	}
	header = json_pack("{ss ss}", "alg", jose_alg_name(alg), "typ", "JWT");
	/* jsonw writes each number back as the shortest text for its
	 * double: the value typed (checked above), not 17 digits of it. */
	payload = jsonw_dump(claims, JSONW_PLAIN, NULL);
	if (header != NULL && payload != NULL)
		*jws = jose_sign_compact(key, alg, header, payload,
		    strlen(payload));
	free(payload);
	json_decref(header);
	EVP_PKEY_free(key);
	return (*jws != NULL ? 0 : ctl_fail("could not sign the intent"));
}

/* Human lines for an allowed or pending decision. */
static void
submit_print_human(const json_t *d, int pending)
{
	const json_t	*am = json_object_get(d, "amount"), *ap;
	const json_t	*list = json_object_get(d, "approvals");
	size_t		 i;

	out_kv(pending ? "pending" : "allowed", "%s   %s", out_str(d, "id"),
	    out_str(d, "tool"));
	/* Released by approvers: say who, not the policy's first word. */
	if (!pending && json_array_size(list) > 0)
		json_array_foreach(list, i, ap)
			out_kv(i == 0 ? "approved" : "", "by %s at %s",
			    out_str(ap, "by"), out_str(ap, "at"));
	else
		out_kv("reason", "%s", out_str(d, "reason"));
	if (json_is_object(am))
		out_kv("amount", "%s %s", out_str(am, "value"),
		    out_str(am, "currency"));
	if (!pending) {
		out_kv("grant", "%s", out_str(d, "grant"));
		out_kv("expires", "%s", out_str(d, "grant_expires_at"));
		return;
	}
	out_kv("approvals", "%zu of %" JSON_INTEGER_FORMAT " required",
	    json_array_size(json_object_get(d, "approvals")),
	    json_integer_value(json_object_get(d, "approvals_required")));
	out_kv("expires", "%s", out_str(d, "expires_at"));
	printf("ask an approver: toolgatectl approve %s\n", out_str(d, "id"));
}

/* Why the intent did not go through, on stderr.  Returns CTL_FAIL. */
static int
submit_refused(const json_t *d, const char *status)
{
	if (json_is_string(json_object_get(d, "closed_by")))
		return (out_fail("%s by %s: %s", status, out_str(d,
		    "closed_by"), out_str(d, "closed_reason")));
	if (strcmp(status, "expired") == 0)
		return (out_fail("expired: no decision before %s",
		    out_str(d, "expires_at")));
	return (out_fail("%s: %s: %s", status, out_str(d, "reason_code"),
	    out_str(d, "reason")));
}

static int
is_pending(const json_t *d)
{
	return (strcmp(out_str(d, "status"), "pending") == 0);
}

/*
 * Print the decision or intent view d and return the exit code: 0
 * allowed, 4 still pending, 1 anything refused.  shown: the pending
 * view was printed already (before waiting), so a human gets only what
 * changed; waited: seconds waited, for the still-pending message.
 */
static int
submit_print(const struct ctl *ctl, const json_t *d, int shown,
    int64_t waited)
{
	const char	*status = out_str(d, "status");
	int		 allow = strcmp(status, "allowed") == 0;
	int		 pending = is_pending(d);

	if (ctl->json)
		out_json(d);
	else if (allow || (pending && !shown))
		submit_print_human(d, pending);
	if (allow)
		return (CTL_OK);
	if (pending) {
		if (waited > 0)
			out_fail("still pending after %lld s; wait again with: "
			    "toolgatectl wait %s", (long long)waited,
			    out_str(d, "id"));
		return (CTL_PENDING);
	}
	return (submit_refused(d, status));
}

/* Before a wait: the pending intent's id must be out at once, also
 * into a pipe, so a script or a human can act on it while we wait. */
static void
submit_announce(const struct ctl *ctl, const json_t *d, int64_t secs)
{
	if (ctl->json)
		out_fail("pending %s: waiting up to %lld s for the decision",
		    out_str(d, "id"), (long long)secs);
	else {
		submit_print_human(d, 1);
		printf("waiting up to %lld s for the decision\n",
		    (long long)secs);
	}
	fflush(stdout);
}

static int64_t
submit_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/*
 * Follow the pending intent *d with long-polls of at most 60 s each until
 * it leaves pending or secs run out; *d is replaced by each newer view.
 * The socket timeout grows to cover each poll.  CTL_OK or an exit code.
 */
static int
submit_wait(struct ctl *ctl, int64_t secs, json_t **d)
{
	int64_t		 deadline = submit_ms() + secs * 1000, left, w, t0;
	const char	*id;
	char		 path[96];
	json_t		*v;
	int		 rc, code;

	while (is_pending(*d) && (left = deadline - submit_ms()) > 0) {
		id = out_str(*d, "id");
		if (!ctl_intent_id_ok(id))
			return (out_fail("%s answered with a bad intent id "
			    "'%s'", ctl->url, id));
		w = (left + 999) / 1000;
		w = w > SUBMIT_POLL_MAX ? SUBMIT_POLL_MAX : w;
		snprintf(path, sizeof(path), "/v1/intents/%s?wait=%lld", id,
		    (long long)w);
		ctl->timeout = (int)w + SUBMIT_POLL_SLACK;
		t0 = submit_ms();
		rc = ctl_call(ctl, "GET", path, NULL, NULL, 0, &code, &v);
		ctl->timeout = CTL_TIMEOUT;
		if (rc != CTL_OK)
			return (rc);
		json_decref(*d);
		*d = v;
		/* A broker that answers a wait at once must not make us spin. */
		if (submit_ms() - t0 < 1000 && submit_ms() < deadline &&
		    is_pending(v))
			sleep(1);
	}
	return (CTL_OK);
}

int
cmd_submit(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	struct submit	 s;
	char		 iss[IDENT_MAX], *jws = NULL;
	json_t		*claims = NULL, *ans = NULL;
	int		 rc, status, shown = 0;

	if ((rc = submit_parse(cmd, a, &s)) != 0 ||
	    (rc = ctl_need_identity(ctl, cmd)) != 0)
		goto done;
	if ((rc = ctl_cert_identity(ctl, iss, sizeof(iss))) != 0)
		goto done;
	if ((claims = submit_claims(&s, iss)) == NULL) {
		rc = ctl_usage(cmd, "could not build the intent (text must be "
		    "UTF-8)");
		goto done;
	}
	if ((rc = submit_sign(ctl, claims, &jws)) != 0)
		goto done;
	if ((rc = ctl_call(ctl, "POST", "/v1/intents", "application/jose",
	    jws, strlen(jws), &status, &ans)) != CTL_OK)
		goto done;
	if (s.wait > 0 && is_pending(ans)) {
		submit_announce(ctl, ans, s.wait);
		shown = 1;
		if ((rc = submit_wait(ctl, s.wait, &ans)) != CTL_OK)
			goto done;
	}
	rc = submit_print(ctl, ans, shown && !ctl->json, s.wait);
 done:
	json_decref(ans);
	free(jws);
	json_decref(claims);
	json_decref(s.args);
	return (rc);
}

/* toolgatectl wait ID: look once, then follow it until decided or
 * --timeout.  Exit codes as for submit. */
int
cmd_wait(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a)
{
	int64_t	 secs = WAIT_DEFAULT;
	json_t	*ans;
	int	 rc;

	if ((rc = ctl_parse_int(cmd, "--timeout", a->val[0], 0,
	    SUBMIT_MAX_WAIT, &secs)) != 0 ||
	    (rc = ctl_get_intent(ctl, cmd, a->pos[0], &ans)) != CTL_OK)
		return (rc);
	if (secs > 0 && (rc = submit_wait(ctl, secs, &ans)) != CTL_OK) {
		json_decref(ans);
		return (rc);
	}
	rc = submit_print(ctl, ans, 0, secs);
	json_decref(ans);
	return (rc);
}

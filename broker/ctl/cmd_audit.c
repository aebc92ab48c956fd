/*
 * cmd_audit: toolgatectl audit verify | export.  With --db both read the
 * database itself (audit.c), so they work with the broker down and do not
 * take a broker's word about its own log.  Without --db they page through
 * GET /v1/audit; verify then recomputes every hash here, from the records
 * the broker served, with the same canonical bytes audit.c hashes (each
 * record in the form its format names, proto/audit.md).  Both print the
 * same lines either way.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit.h"
#include "canon.h"
#include "ctl.h"

#define AUDIT_PAGE	1000		/* records per GET /v1/audit */
#define AUDIT_MAX_LIMIT	1000000000

typedef int (*audit_cb)(json_t *rec, void *arg);

static int	audit_cmd_verify(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);
static int	audit_cmd_export(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);

static const struct ctl_opt opts_none[] = { { NULL, NULL, NULL, 0 } };

static const struct ctl_opt opts_export[] = {
	{ "after", "SEQ", "only records with a larger seq (default 0)", 0 },
	{ "limit", "N", "at most N records", 0 },
	{ NULL, NULL, NULL, 0 }
};
enum { E_AFTER, E_LIMIT };

const struct ctl_cmd cmd_audit[] = {
	{ "verify", "audit verify", "",
	    "check every record's hash chain (--db: the file itself)",
	    "toolgatectl --db toolgate.db audit verify",
	    opts_none, 0, audit_cmd_verify, NULL },
	{ "export", "audit export", "[--after SEQ] [--limit N]",
	    "write the audit records as JSON lines",
	    "toolgatectl --db toolgate.db audit export --after 100",
	    opts_export, 0, audit_cmd_export, NULL },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL }
};

/* One page of GET /v1/audit into *items (new ref).  CTL_OK or the exit
 * code (printed). */
static int
audit_page(const struct ctl *ctl, int64_t after, int64_t n, json_t **items)
{
	char	 path[96];
	json_t	*ans;
	int	 rc, code;

	*items = NULL;
	snprintf(path, sizeof(path), "/v1/audit?after=%lld&limit=%lld",
	    (long long)after, (long long)n);
	if ((rc = ctl_call(ctl, "GET", path, NULL, NULL, 0, &code, &ans)) !=
	    CTL_OK)
		return (rc);
	if (json_is_array(json_object_get(ans, "items")))
		*items = json_incref(json_object_get(ans, "items"));
	json_decref(ans);
	if (*items == NULL)
		return (ctl_fail("%s answered without an items list",
		    ctl->url));
	return (CTL_OK);
}

/*
 * The online counterpart of audit_each: records with seq > after (at most
 * limit, 0 = all) through cb, page by page, until a page comes back empty
 * or cb returns non-zero.  Seqs must increase, so a confused broker cannot
 * keep us looping.  CTL_OK or the exit code (printed).
 */
static int
audit_fetch(const struct ctl *ctl, int64_t after, int64_t limit,
    audit_cb cb, void *arg)
{
	json_t		*items, *rec;
	json_int_t	 seq;
	int64_t		 done = 0, n;
	size_t		 i;
	int		 rc, stop = 0;

	while (!stop && (limit == 0 || done < limit)) {
		n = limit == 0 || limit - done > AUDIT_PAGE ? AUDIT_PAGE :
		    limit - done;
		if ((rc = audit_page(ctl, after, n, &items)) != CTL_OK)
			return (rc);
		stop = json_array_size(items) == 0;
		json_array_foreach(items, i, rec) {
			if (stop || (limit != 0 && done >= limit))
				break;
			seq = json_integer_value(json_object_get(rec, "seq"));
			if (seq <= after) {
				json_decref(items);
				return (ctl_fail("%s sent audit record %"
				    JSON_INTEGER_FORMAT " after %lld: out of "
				    "order", ctl->url, seq, (long long)after));
			}
			after = seq;
			done++;
			stop = cb(rec, arg);
		}
		json_decref(items);
	}
	return (CTL_OK);
}

/* Records (seq > after, at most limit) through cb, offline with --db or
 * online.  CTL_OK or the exit code (printed). */
static int
audit_walk(const struct ctl *ctl, int64_t after, int64_t limit, audit_cb cb,
    void *arg)
{
	struct store	*s;
	int		 r, rc;

	if (ctl->db == NULL)
		return (audit_fetch(ctl, after, limit, cb, arg));
	if ((rc = ctl_store_open(ctl, 0, &s)) != CTL_OK)
		return (rc);
	r = audit_each(s, after, limit, cb, arg);
	store_close(s);
	return (r == 0 ? CTL_OK : ctl_fail("%s: could not read the audit log",
	    ctl_db_name(ctl)));
}

/* --- export ---------------------------------------------------------- */

static int
export_record(json_t *rec, void *arg)
{
	out_json_line(rec);
	return (ferror(stdout) ? 1 : 0);
}

static int
audit_cmd_export(struct ctl *ctl, const struct ctl_cmd *cmd,
    struct ctl_args *a)
{
	int64_t	 after = 0, limit = 0;
	int	 rc;

	if ((rc = ctl_parse_int(cmd, "--after", a->val[E_AFTER], 0, INT64_MAX,
	    &after)) != 0 || (rc = ctl_parse_int(cmd, "--limit",
	    a->val[E_LIMIT], 1, AUDIT_MAX_LIMIT, &limit)) != 0 ||
	    (ctl->db == NULL && (rc = ctl_need_identity(ctl, cmd)) != 0))
		return (rc);
	rc = audit_walk(ctl, after, limit, export_record, NULL);
	if (fflush(stdout) == EOF || ferror(stdout))
		return (ctl_fail("stdout: write error"));
	return (rc);
}

/* --- verify ---------------------------------------------------------- */

struct verify_walk {
	struct audit_check	 r;
	char			 prev[SHA256_HEX_LEN + 1];
	int			 format;	/* of the previous record */
};

/* Why rec (the expect-th record, after prev) does not verify, or NULL
 * with its hash in hash. */
static const char *
verify_one(const json_t *rec, const char *prev, int64_t expect, int *format,
    char hash[SHA256_HEX_LEN + 1])
{
	const char	*ph = json_string_value(json_object_get(rec,
			    "prev_hash"));
	const char	*h = json_string_value(json_object_get(rec, "hash"));
	const char	*why;
	json_t		*body;
	char		*text;
	size_t		 len;

	if (json_integer_value(json_object_get(rec, "seq")) != expect)
		return ("sequence gap: a record is missing");
	if (ph == NULL || h == NULL)
		return ("a column is NULL");
	if (strlen(ph) != SHA256_HEX_LEN || strcmp(ph, prev) != 0)
		return ("prev_hash does not match the previous record's hash");
	/* The hashed body is the record without its two hashes. */
	if ((body = json_copy((json_t *)(uintptr_t)rec)) == NULL)
		return ("out of memory");
	json_object_del(body, "prev_hash");
	json_object_del(body, "hash");
	why = audit_canonical(body, format, &text, &len);
	json_decref(body);
	if (why != NULL)
		return (why);
	canon_sha256_hex2(prev, SHA256_HEX_LEN, text, len, hash);
	free(text);
	if (strcmp(h, hash) != 0)
		return ("hash does not match the record's contents");
	return (NULL);
}

static int
verify_record(json_t *rec, void *arg)
{
	struct verify_walk	*w = arg;
	char			 hash[SHA256_HEX_LEN + 1];
	const char		*why;

	if ((why = verify_one(rec, w->prev, w->r.count + 1, &w->format,
	    hash)) != NULL) {
		w->r.bad_seq = w->r.count + 1;
		snprintf(w->r.why, sizeof(w->r.why), "%s", why);
		return (1);
	}
	memcpy(w->prev, hash, sizeof(w->prev));
	w->r.count++;
	return (0);
}

/* The verdict (v: 0 good, 1 broken), as a line or JSON; its exit code. */
static int
verify_report(const struct ctl *ctl, int v, const struct audit_check *r)
{
	json_t	*out;

	if (ctl->json) {
		out = json_pack("{sb sI so so}", "ok", v == 0, "records",
		    (json_int_t)r->count, "bad_seq", v == 0 ? json_null() :
		    json_integer(r->bad_seq), "why", v == 0 ? json_null() :
		    json_string(r->why));
		out_json(out);
		json_decref(out);
	}
	if (v == 0) {
		if (!ctl->json)
			printf("audit chain OK: %lld record%s\n",
			    (long long)r->count, r->count == 1 ? "" : "s");
		return (CTL_OK);
	}
	return (ctl_fail("audit chain BROKEN at record %lld: %s",
	    (long long)r->bad_seq, r->why));
}

static int
audit_cmd_verify(struct ctl *ctl, const struct ctl_cmd *cmd,
    struct ctl_args *a)
{
	struct verify_walk	 w;
	struct store		*s;
	int			 v, rc;

	if (ctl->db == NULL) {
		if ((rc = ctl_need_identity(ctl, cmd)) != 0)
			return (rc);
		memset(&w, 0, sizeof(w));
		snprintf(w.prev, sizeof(w.prev), "%s", AUDIT_GENESIS);
		if ((rc = audit_fetch(ctl, 0, 0, verify_record, &w)) != CTL_OK)
			return (rc);
		return (verify_report(ctl, w.r.bad_seq != 0, &w.r));
	}
	if ((rc = ctl_store_open(ctl, 0, &s)) != CTL_OK)
		return (rc);
	v = audit_verify(s, &w.r);
	store_close(s);
	if (v == -1)
		return (ctl_fail("%s: could not read the audit log", ctl_db_name(ctl)));
	return (verify_report(ctl, v, &w.r));
}

/*
 * cmd_audit: toolgatectl audit verify | export.  verify walks the hash
 * chain of the database itself (--db), so it works with the broker down
 * and does not trust a broker's word about its own log.
 */
#include <stdio.h>

#include <jansson.h>

#include "audit.h"
#include "ctl.h"

static int	audit_cmd_verify(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);

static const struct ctl_opt opts_none[] = { { NULL, NULL, NULL } };

static const struct ctl_opt opts_export[] = {
	{ "after", "SEQ", "only records with a larger seq" },
	{ NULL, NULL, NULL }
};

const struct ctl_cmd cmd_audit[] = {
	{ "verify", "audit verify", "",
	    "check every record's hash chain (needs --db)",
	    "toolgatectl --db toolgate.db audit verify",
	    opts_none, 0, audit_cmd_verify, NULL },
	{ "export", "audit export", "[--after SEQ]",
	    "write the audit records as JSON lines",
	    "toolgatectl --db toolgate.db audit export --after 100",
	    opts_export, 0, ctl_not_implemented, NULL },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL }
};

static int
audit_cmd_verify(struct ctl *ctl, const struct ctl_cmd *cmd,
    struct ctl_args *a)
{
	struct audit_check	 r;
	struct db		*db;
	json_t			*out;
	int			 v;

	if (ctl->db == NULL)
		return (ctl_usage(cmd, "audit verify needs --db PATH "
		    "(it reads the database itself)"));
	if ((db = ctl_db_open(ctl, 0)) == NULL)
		return (CTL_FAIL);
	v = audit_verify(db, &r);
	db_close(db);
	if (v == -1)
		return (ctl_fail("%s: could not read the audit log", ctl->db));
	if (ctl->json) {
		out = json_pack("{sb sI so so}", "ok", v == 0, "records",
		    (json_int_t)r.count, "bad_seq", v == 0 ? json_null() :
		    json_integer(r.bad_seq), "why", v == 0 ? json_null() :
		    json_string(r.why));
		out_json(out);
		json_decref(out);
	}
	if (v == 0) {
		if (!ctl->json)
			printf("audit chain OK: %lld record%s\n",
			    (long long)r.count, r.count == 1 ? "" : "s");
		return (CTL_OK);
	}
	return (ctl_fail("audit chain BROKEN at record %lld: %s",
	    (long long)r.bad_seq, r.why));
}

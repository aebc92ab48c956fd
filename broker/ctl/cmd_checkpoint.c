/*
 * cmd_checkpoint: toolgatectl audit checkpoint | prune — the commands
 * that sign checkpoints.  checkpoint prints one of the newest record:
 * online the broker's (GET /v1/audit/checkpoint, after its own head
 * check), offline with --db signed here with --grant-key after the whole
 * chain verified.  Keep them off the broker's host: a later chain that no
 * longer holds one (audit verify --checkpoint) was truncated, rewritten
 * or rolled back.  prune (offline only) archives the older records
 * (audit_prune.h) and forgets them and the intents that are over
 * (lc_prune).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "audit.h"
#include "audit_prune.h"
#include "checkpoint.h"
#include "clock.h"
#include "ctl.h"
#include "file.h"
#include "grant.h"
#include "jose.h"

const struct ctl_opt cmd_checkpoint_opts[] = {
	{ "grant-key", "FILE", "offline (--db): the broker's --grant-key, "
	    "which signs checkpoints", 0 },
	{ NULL, NULL, NULL, 0 }
};
enum { C_GRANT_KEY };

const struct ctl_opt cmd_prune_opts[] = {
	{ "before", "RFC3339", "archive the records older than this "
	    "(YYYY-MM-DDTHH:MM:SSZ)", 0 },
	{ "archive", "FILE", "the archive to write (a new file; never "
	    "overwritten)", 0 },
	{ "grant-key", "FILE", "the broker's --grant-key: signs the "
	    "checkpoint the archive ends with", 0 },
	{ NULL, NULL, NULL, 0 }
};
enum { P_BEFORE, P_ARCHIVE, P_GRANT_KEY };

/* The grant signing key at path (mode 0600 like the broker wants). */
static int
load_signer(const struct ctl_cmd *cmd, const char *path,
    struct grant_signer *g)
{
	const char	*why = NULL;
	char		 err[256];
	mode_t		 mode;
	EVP_PKEY	*key;

	if (path == NULL)
		return (ctl_usage(cmd, "--grant-key FILE is needed offline: "
		    "it signs the checkpoint"));
	if (file_check(path, &mode, err, sizeof(err)) == -1) {
		ctl_fail("--grant-key %s: %s", path, err);
		return (CTL_USAGE);
	}
	if (mode & (S_IRWXG | S_IRWXO)) {
		ctl_fail("--grant-key %s: private key is accessible by group or "
		    "others (mode %04o): chmod 600 it", path,
		    (unsigned)(mode & 07777));
		return (CTL_USAGE);
	}
	if ((key = jose_load_private_key(path, &why)) == NULL ||
	    grant_signer_init(g, key, &why) == -1) {
		ctl_fail("--grant-key %s: %s", path, why ? why : "unusable");
		return (CTL_USAGE);
	}
	return (CTL_OK);
}

/* Verify the whole chain kept in s (tags too with t's keys): CTL_OK, or
 * CTL_FAIL after saying where it breaks. */
static int
chain_ok(const struct ctl *ctl, struct store *s, const struct ctl_trust *t,
    const char *what)
{
	struct audit_check	 r;
	int			 v;

	v = audit_verify_keyed(s, t->cfg.trust != NULL ? &t->keys : NULL, &r);
	if (v == -1)
		return (ctl_fail("%s: could not read the audit log",
		    ctl_db_name(ctl)));
	if (v == 1)
		return (ctl_fail("audit chain BROKEN at record %lld: %s (%s "
		    "refused)", (long long)r.bad_seq, r.why, what));
	return (CTL_OK);
}

static int
print_checkpoint(const struct ctl *ctl, const char *jws,
    const struct checkpoint *cp)
{
	json_t	*out;

	if (!ctl->json) {
		printf("%s\n", jws);
		return (CTL_OK);
	}
	out = json_pack("{ss sI ss sI}", "checkpoint", jws, "seq",
	    (json_int_t)cp->seq, "hash", cp->hash, "iat", (json_int_t)cp->iat);
	out_json(out);
	json_decref(out);
	return (CTL_OK);
}

static int
checkpoint_offline(const struct ctl *ctl, const struct ctl_cmd *cmd,
    const char *key_path)
{
	struct ctl_trust	 t;
	struct grant_signer	 g;
	struct checkpoint	 cp;
	struct store		*s = NULL;
	struct audit_head	 head;
	const char		*why;
	char			*jws = NULL;
	int			 rc;

	if ((rc = load_signer(cmd, key_path, &g)) != CTL_OK)
		return (rc);
	if ((rc = ctl_trust_open(ctl, cmd, 0, &t)) != CTL_OK)
		goto done;
	if ((rc = ctl_store_open(ctl, 0, &s)) != CTL_OK ||
	    (rc = chain_ok(ctl, s, &t, "no checkpoint signed")) != CTL_OK)
		goto done;
	if (s->ops->audit_head(s, &head.seq, head.hash) == -1 ||
	    (jws = checkpoint_sign(g.ring->keys[0].key,
	    g.ring->keys[0].header, head.seq, head.hash, clock_now())) ==
	    NULL || checkpoint_parse(jws, &cp, &why) == -1)
		rc = ctl_fail("%s: could not sign a checkpoint",
		    ctl_db_name(ctl));
	else
		rc = print_checkpoint(ctl, jws, &cp);
 done:
	free(jws);
	store_close(s);
	ctl_trust_close(&t);
	grant_signer_deinit(&g);
	return (rc);
}

int
cmd_audit_checkpoint(struct ctl *ctl, const struct ctl_cmd *cmd,
    struct ctl_args *a)
{
	struct checkpoint	 cp;
	const char		*jws, *why;
	json_t			*ans;
	int			 rc, code;

	if (ctl->db != NULL)
		return (checkpoint_offline(ctl, cmd, a->val[C_GRANT_KEY]));
	if ((rc = ctl_need_identity(ctl, cmd)) != 0)
		return (rc);
	if ((rc = ctl_call(ctl, "GET", "/v1/audit/checkpoint", NULL, NULL, 0,
	    &code, &ans)) != CTL_OK)
		return (rc);
	jws = json_string_value(json_object_get(ans, "checkpoint"));
	if (jws == NULL || checkpoint_parse(jws, &cp, &why) == -1)
		rc = ctl_fail("%s answered without a checkpoint", ctl->url);
	else
		rc = print_checkpoint(ctl, jws, &cp);
	json_decref(ans);
	return (rc);
}

/* --- prune ------------------------------------------------------------ */

static int
print_pruned(const struct ctl *ctl, const char *archive,
    const struct audit_prune_plan *p, int64_t head, int64_t intents)
{
	json_t	*out;

	if (ctl->json) {
		out = json_pack("{ss sI sI sI ss sI sI so}", "archive", archive,
		    "archived", (json_int_t)p->records, "from",
		    (json_int_t)p->start.seq + 1, "cut", (json_int_t)p->cut.seq,
		    "cut_hash", p->cut.hash, "kept_to", (json_int_t)head,
		    "intents", (json_int_t)intents, "kept_by", p->kept_by ?
		    json_string(p->kept_by) : json_null());
		out_json(out);
		json_decref(out);
		return (CTL_OK);
	}
	printf("archived records %lld to %lld into %s, ending in a checkpoint "
	    "of record %lld\n", (long long)p->start.seq + 1,
	    (long long)p->cut.seq, archive, (long long)p->cut.seq);
	printf("the database keeps records %lld to %lld; %lld intent%s that "
	    "were over removed\n", (long long)p->cut.seq + 1, (long long)head,
	    (long long)intents, intents == 1 ? "" : "s");
	if (p->kept_by != NULL)
		printf("stopped early to keep %s\n", p->kept_by);
	return (CTL_OK);
}

/* Archive, then forget, in that order: the archive is synced first. */
static int
prune_run(const struct ctl *ctl, struct store *s, struct ctl_trust *t,
    const struct grant_signer *g, const char *archive, int64_t before,
    const char *before_text)
{
	struct audit_prune_plan	 p;
	struct audit_cut	 cut;
	struct decider		 d;
	char			 actor[300], err[512], hash[65];
	int64_t			 intents = 0, head, now = clock_now();
	enum reason		 r;
	int			 rc;

	if (audit_prune_plan(s, before, &p) == -1)
		return (ctl_fail("%s: could not read the audit log",
		    ctl_db_name(ctl)));
	if (p.records == 0) {
		if (p.kept_by != NULL)
			printf("nothing to prune before %s: keeping %s\n",
			    before_text, p.kept_by);
		else
			printf("nothing to prune: no record is older than "
			    "%s\n", before_text);
		audit_prune_plan_clear(&p);
		return (CTL_OK);
	}
	memset(&cut, 0, sizeof(cut));
	if (audit_archive_write(s, &p, archive, g->ring->keys[0].key,
	    g->ring->keys[0].header, now, &cut.checkpoint, err,
	    sizeof(err)) == -1) {
		audit_prune_plan_clear(&p);
		return (ctl_fail("%s", err));
	}
	cut.seq = p.cut.seq;
	memcpy(cut.hash, p.cut.hash, sizeof(cut.hash));
	ctl_actor(actor, sizeof(actor));
	decider_init(&d, s, "toolgatectl", &t->cfg);
	r = lc_begin(&d) == -1 ? E_UNAVAILABLE : lc_finish(&d, lc_prune(&d,
	    &cut, p.records, before, actor, now, &intents));
	if (r != REASON_OK || s->ops->audit_head(s, &head, hash) == -1)
		rc = ctl_fail("%s: the archive %s is written, but the database "
		    "could not be pruned: nothing was removed", ctl_db_name(ctl),
		    archive);
	else
		rc = print_pruned(ctl, archive, &p, head, intents);
	decider_deinit(&d);
	free(cut.checkpoint);
	audit_prune_plan_clear(&p);
	return (rc);
}

int
cmd_audit_prune(struct ctl *ctl, const struct ctl_cmd *cmd,
    struct ctl_args *a)
{
	struct ctl_trust	 t;
	struct grant_signer	 g;
	struct store		*s = NULL;
	int64_t			 before;
	int			 rc;

	if (ctl->db == NULL)
		return (ctl_usage(cmd, "audit prune works on the database "
		    "itself: give --db PATH"));
	if (a->val[P_BEFORE] == NULL || clock_parse_rfc3339(a->val[P_BEFORE],
	    &before) == -1)
		return (ctl_usage(cmd, "--before must be a time like "
		    "2026-01-01T00:00:00Z"));
	if (a->val[P_ARCHIVE] == NULL)
		return (ctl_usage(cmd, "--archive FILE is needed: the records "
		    "go there"));
	if ((rc = load_signer(cmd, a->val[P_GRANT_KEY], &g)) != CTL_OK)
		return (rc);
	if ((rc = ctl_trust_open(ctl, cmd, 0, &t)) != CTL_OK)
		goto done;
	if ((rc = ctl_store_open(ctl, 0, &s)) == CTL_OK &&
	    (rc = chain_ok(ctl, s, &t, "nothing pruned")) == CTL_OK)
		rc = prune_run(ctl, s, &t, &g, a->val[P_ARCHIVE], before,
		    a->val[P_BEFORE]);
	store_close(s);
	ctl_trust_close(&t);
 done:
	grant_signer_deinit(&g);
	return (rc);
}

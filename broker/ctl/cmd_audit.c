/*
 * cmd_audit: toolgatectl audit verify | export (checkpoint and prune are
 * cmd_checkpoint.c's).  With --db both read the database itself
 * (audit.c), so they work with the broker down and do not take a
 * broker's word about its own log.  Without --db they page through GET
 * /v1/audit; verify then recomputes every hash here, from the records the
 * broker served (audit_stream.c, the same check an archive gets).
 * verify --checkpoint FILE (repeatable) also checks that the chain still
 * holds each checkpoint's record with its hash: what a truncation, a
 * rewrite with every later hash recomputed, or a rollback cannot keep.
 * Both print the same lines either way.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit.h"
#include "audit_stream.h"
#include "canon.h"
#include "checkpoint.h"
#include "ctl.h"

#define AUDIT_PAGE	1000		/* records per GET /v1/audit */
#define AUDIT_MAX_LIMIT	1000000000
#define ARCHIVE_LINE_MAX (4 * 1024 * 1024)	/* bytes of one line */

typedef int (*audit_cb)(json_t *rec, void *arg);

static int	audit_cmd_verify(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);
static int	audit_cmd_export(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);

static const struct ctl_opt opts_verify[] = {
	{ "checkpoint", "FILE", "also check that the chain still holds the "
	    "record of this checkpoint (from audit checkpoint) with its hash; "
	    "repeatable", 0 },
	{ "archive", "FILE", "verify this archive (from audit prune) instead "
	    "of the database or the broker", 0 },
	{ "jwks", "FILE", "the broker's keys (GET /v1/jwks) to check "
	    "checkpoint signatures offline (online: fetched)", 0 },
	{ NULL, NULL, NULL, 0 }
};
enum { V_CHECKPOINT, V_ARCHIVE, V_JWKS };

static const struct ctl_opt opts_export[] = {
	{ "after", "SEQ", "only records with a larger seq (default 0)", 0 },
	{ "limit", "N", "at most N records", 0 },
	{ NULL, NULL, NULL, 0 }
};
enum { E_AFTER, E_LIMIT };

const struct ctl_cmd cmd_audit[] = {
	{ "verify", "audit verify",
	    "[--checkpoint FILE]... [--archive FILE] [--jwks FILE]",
	    "check every record's hash chain (--db: the file itself), and "
	    "that it still holds each checkpoint",
	    "toolgatectl --db toolgate.db audit verify --checkpoint "
	    "cp-monday.jws",
	    opts_verify, 0, audit_cmd_verify, NULL },
	{ "export", "audit export", "[--after SEQ] [--limit N]",
	    "write the audit records as JSON lines",
	    "toolgatectl --db toolgate.db audit export --after 100",
	    opts_export, 0, audit_cmd_export, NULL },
	{ "checkpoint", "audit checkpoint", "[--grant-key FILE]",
	    "print a signed checkpoint of the newest record (--db: offline, "
	    "with --grant-key)",
	    "toolgatectl audit checkpoint > cp-$(date +%F).jws",
	    cmd_checkpoint_opts, 0, cmd_audit_checkpoint, NULL },
	{ "prune", "audit prune",
	    "--before RFC3339 --archive FILE --grant-key FILE",
	    "move older records into an archive that verifies on its own "
	    "(--db only)",
	    "toolgatectl --db toolgate.db audit prune --before "
	    "2026-01-01T00:00:00Z --archive audit-2025.jsonl --grant-key "
	    "grant.key",
	    cmd_prune_opts, 0, cmd_audit_prune, NULL },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL }
};

/* One page of GET /v1/audit into *items (new ref), and the checkpoint
 * the kept chain starts after into *start (new ref) when it was pruned.
 * CTL_OK or the exit code (printed). */
static int
audit_page(const struct ctl *ctl, int64_t after, int64_t n, json_t **items,
    json_t **start)
{
	char	 path[96];
	json_t	*ans;
	int	 rc, code;

	*items = NULL;
	if (start != NULL)
		*start = NULL;
	snprintf(path, sizeof(path), "/v1/audit?after=%lld&limit=%lld",
	    (long long)after, (long long)n);
	if ((rc = ctl_call(ctl, "GET", path, NULL, NULL, 0, &code, &ans)) !=
	    CTL_OK)
		return (rc);
	if (json_is_array(json_object_get(ans, "items")))
		*items = json_incref(json_object_get(ans, "items"));
	if (start != NULL && json_is_string(json_object_get(ans, "start")))
		*start = json_incref(json_object_get(ans, "start"));
	json_decref(ans);
	if (*items == NULL)
		return (ctl_fail("%s answered without an items list",
		    ctl->url));
	return (CTL_OK);
}

/*
 * The online counterpart of audit_each: records with seq > after (at most
 * limit, 0 = all) through cb, page by page, until a page comes back empty
 * or cb returns non-zero; first {"start": CHECKPOINT} when the chain was
 * pruned and the walk starts at the beginning.  Seqs must increase, so a
 * confused broker cannot keep us looping.  CTL_OK or the exit code.
 */
static int
audit_fetch(const struct ctl *ctl, int64_t after, int64_t limit,
    audit_cb cb, void *arg)
{
	json_t		*items, *rec, *start = NULL, *line;
	json_int_t	 seq;
	int64_t		 done = 0, n;
	size_t		 i;
	int		 rc, stop = 0, first = after == 0;

	while (!stop && (limit == 0 || done < limit)) {
		n = limit == 0 || limit - done > AUDIT_PAGE ? AUDIT_PAGE :
		    limit - done;
		if ((rc = audit_page(ctl, after, n, &items, first ? &start :
		    NULL)) != CTL_OK)
			return (rc);
		if (first && start != NULL) {
			line = json_pack("{so}", "start", start);
			stop = line == NULL || cb(line, arg);
			json_decref(line);
		}
		first = 0;
		stop |= json_array_size(items) == 0;
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

/* The start line of a pruned database, through cb (after == 0 only). */
static int
audit_db_start(struct store *s, int64_t after, audit_cb cb, void *arg)
{
	struct audit_cut	 cut;
	json_t			*line;
	int			 found, stop = 0;

	if (after != 0 || (found = s->ops->audit_cut_get(s, &cut)) == 0)
		return (0);
	if (found == -1)
		return (-1);
	line = json_pack("{ss}", "start", cut.checkpoint);
	free(cut.checkpoint);
	if (line == NULL)
		return (-1);
	stop = cb(line, arg);
	json_decref(line);
	return (stop);
}

/* Lines (seq > after, at most limit records) through cb, offline with
 * --db or online.  CTL_OK or the exit code (printed). */
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
	if ((r = audit_db_start(s, after, cb, arg)) == 0)
		r = audit_each(s, after, limit, cb, arg);
	store_close(s);
	return (r >= 0 ? CTL_OK : ctl_fail("%s: could not read the audit log",
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

/* One --checkpoint FILE and what became of it. */
struct verify_cp {
	const char		*file;
	struct checkpoint	 cp;
	int			 signed_ok;	/* -1 not checked, 0/1 */
	char			 why[320];	/* "" when it holds */
};

struct verify_run {
	struct ctl_trust	 t;		/* --audit-key, if given */
	const struct audit_keys	*keys;
	json_t			*jwks;		/* NULL: not checked */
	struct verify_cp	 cps[AUDIT_STREAM_WANT];
	int			 ncp;
	struct audit_stream	 v;		/* online and --archive */
	struct audit_check	 r;
	struct audit_head	 start, head;
	int			 broken;
	int			 archive;	/* verifying an archive */
};

/* The checkpoint in file (the token, blank space around it allowed). */
static int
verify_read_cp(struct verify_run *run, const char *file)
{
	struct verify_cp	*c = &run->cps[run->ncp];
	char			*text, *tok;
	size_t			 len;
	const char		*why;
	int			 rc = CTL_OK;

	memset(c, 0, sizeof(*c));
	c->file = file;
	c->signed_ok = -1;
	if (ctl_read_file(file, CHECKPOINT_MAX + 64, &text, &len) == -1)
		return (CTL_USAGE);
	tok = text + strspn(text, " \t\r\n");
	tok[strcspn(tok, " \t\r\n")] = '\0';
	if ((run->jwks != NULL ? checkpoint_verify_jwks(run->jwks, tok,
	    &c->cp, &why) : checkpoint_parse(tok, &c->cp, &why)) == -1)
		rc = ctl_fail("checkpoint %s: %s", file, why);
	else {
		c->signed_ok = run->jwks != NULL ? 1 : -1;
		run->ncp++;
	}
	free(text);
	return (rc);
}

/* The JWK Set: --jwks FILE, else the broker's when online. */
static int
verify_jwks(const struct ctl *ctl, struct verify_run *run, const char *file)
{
	json_t	*ans;
	char	*text;
	size_t	 len;
	int	 rc, code;

	if (file != NULL) {
		if (ctl_read_file(file, 64 * 1024, &text, &len) == -1)
			return (CTL_USAGE);
		run->jwks = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
		free(text);
		if (!json_is_array(json_object_get(run->jwks, "keys")))
			return (ctl_fail("--jwks %s: not a JWK Set ({\"keys\": "
			    "[...]})", file));
		return (CTL_OK);
	}
	if ((rc = ctl_call(ctl, "GET", "/v1/jwks", NULL, NULL, 0, &code,
	    &ans)) != CTL_OK)
		return (rc);
	run->jwks = ans;
	return (CTL_OK);
}

/* What holds (why "") or differs for checkpoint c: hash is the chain's
 * hash of c's record when seen. */
static void
verify_judge(struct verify_cp *c, const struct audit_head *start,
    const struct audit_head *head, int seen, const char *hash)
{
	const struct checkpoint	*cp = &c->cp;

	if (cp->seq == start->seq) {
		seen = 1;
		hash = start->hash;
	}
	if (seen && strcmp(hash, cp->hash) == 0)
		c->why[0] = '\0';
	else if (seen)
		snprintf(c->why, sizeof(c->why), "record %lld's hash is %.12s..., "
		    "but the checkpoint says %.12s...: the chain was rewritten "
		    "(every later hash recomputed) or replaced by another copy",
		    (long long)cp->seq, hash, cp->hash);
	else if (cp->seq > head->seq)
		snprintf(c->why, sizeof(c->why), "the chain ends at record "
		    "%lld, but the checkpoint holds record %lld: records were "
		    "removed, or an older copy of the database is in place",
		    (long long)head->seq, (long long)cp->seq);
	else
		snprintf(c->why, sizeof(c->why), "record %lld is before the "
		    "start of this chain (after record %lld): it was pruned; "
		    "check the checkpoint against its archive (audit verify "
		    "--archive FILE)", (long long)cp->seq,
		    (long long)start->seq);
}

struct db_at {
	int64_t		 seq;
	char		*hash;
	int		 found;
};

static int
db_at_cb(const struct audit_row *row, void *arg)
{
	struct db_at	*d = arg;

	if (row->seq == d->seq && row->hash != NULL &&
	    strlen(row->hash) == 64) {
		memcpy(d->hash, row->hash, 65);
		d->found = 1;
	}
	return (1);
}

/* The stored hash of record seq into hash: 1 found, 0 not, -1 error. */
static int
db_hash_at(struct store *s, int64_t seq, char hash[65])
{
	struct db_at	 d = { seq, hash, 0 };

	if (seq < 1 || s->ops->audit_walk(s, seq - 1, 1, db_at_cb, &d) == -1)
		return (seq < 1 ? 0 : -1);
	return (d.found);
}

/* The cut's checkpoint names the cut, and is signed when we can tell.
 * -1 (broken, in run->r) or 0. */
static int
verify_cut(struct verify_run *run, const struct audit_cut *cut)
{
	struct checkpoint	 cp;
	const char		*why = NULL;

	if ((run->jwks != NULL ? checkpoint_verify_jwks(run->jwks,
	    cut->checkpoint, &cp, &why) : checkpoint_parse(cut->checkpoint,
	    &cp, &why)) == -1)
		;
	else if (cp.seq != cut->seq || strcmp(cp.hash, cut->hash) != 0)
		why = "it names another record than the cut";
	if (why == NULL)
		return (0);
	run->r.bad_seq = cut->seq + 1;
	snprintf(run->r.why, sizeof(run->r.why), "the checkpoint of the cut "
	    "after record %lld does not hold: %s", (long long)cut->seq, why);
	return (-1);
}

/* The database: the whole chain kept, then each checkpoint's record
 * (the chain verified, so its hash column is the hash). */
static int
verify_db(const struct ctl *ctl, struct verify_run *run)
{
	struct audit_cut	 cut;
	struct store		*s;
	char			 hash[65] = "";
	int			 rc, v, i, found;

	if ((rc = ctl_store_open(ctl, 0, &s)) != CTL_OK)
		return (rc);
	snprintf(run->start.hash, sizeof(run->start.hash), "%s",
	    AUDIT_GENESIS);
	if ((v = audit_verify_keyed(s, run->keys, &run->r)) == -1 ||
	    (found = s->ops->audit_cut_get(s, &cut)) == -1 ||
	    s->ops->audit_head(s, &run->head.seq, run->head.hash) == -1)
		goto bad;
	run->broken = v == 1;
	if (found) {
		run->start.seq = cut.seq;
		memcpy(run->start.hash, cut.hash, sizeof(cut.hash));
		if (!run->broken && verify_cut(run, &cut) == -1)
			run->broken = 1;
		free(cut.checkpoint);
	}
	for (i = 0; !run->broken && i < run->ncp; i++) {
		if ((found = db_hash_at(s, run->cps[i].cp.seq, hash)) == -1)
			goto bad;
		verify_judge(&run->cps[i], &run->start, &run->head, found,
		    hash);
	}
	store_close(s);
	return (CTL_OK);
 bad:
	store_close(s);
	return (ctl_fail("%s: could not read the audit log",
	    ctl_db_name(ctl)));
}

static int
verify_line(json_t *line, void *arg)
{
	struct verify_run	*run = arg;

	return (audit_stream_line(&run->v, line));
}

/* One line of an archive file into the stream: 0 go on, 1 stop. */
static int
verify_archive_line(struct verify_run *run, const char *text, size_t len)
{
	json_t	*line;
	int	 stop;

	if ((line = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) ==
	    NULL) {
		run->v.lines++;
		run->v.r.bad_seq = run->v.head.seq + 1;
		snprintf(run->v.r.why, sizeof(run->v.r.why), "line %d is not "
		    "JSON", run->v.lines);
		return (1);
	}
	stop = audit_stream_line(&run->v, line);
	json_decref(line);
	return (stop);
}

/* An archive: every line through the stream, split at LF only. */
static int
verify_archive(struct verify_run *run, const char *path)
{
	FILE	*f;
	char	*buf = NULL;
	size_t	 cap = 0;
	ssize_t	 n;
	int	 stop = 0;

	if ((f = fopen(path, "rb")) == NULL) {
		ctl_fail("--archive %s: cannot read it", path);
		return (CTL_USAGE);
	}
	while (!stop && (n = getline(&buf, &cap, f)) != -1) {
		if (n > ARCHIVE_LINE_MAX) {
			fclose(f);
			free(buf);
			return (ctl_fail("--archive %s: a line is longer than "
			    "4 MiB", path));
		}
		if (n > 0 && buf[n - 1] == '\n')
			n--;
		if (n > 0)
			stop = verify_archive_line(run, buf, (size_t)n);
	}
	free(buf);
	fclose(f);
	if (!stop && !run->v.ends_checked) {
		run->v.r.bad_seq = run->v.head.seq;
		snprintf(run->v.r.why, sizeof(run->v.r.why), "the archive does "
		    "not end with a checkpoint of its last record: it was cut "
		    "short");
		stop = 1;
	}
	run->broken = stop;
	return (CTL_OK);
}

/* Online or an archive: the stream, then each checkpoint. */
static int
verify_stream(const struct ctl *ctl, struct verify_run *run,
    const char *archive)
{
	int	 i, rc;

	audit_stream_init(&run->v, run->keys, run->jwks);
	for (i = 0; i < run->ncp; i++)
		(void)audit_stream_want(&run->v, run->cps[i].cp.seq);
	if (archive != NULL)
		rc = verify_archive(run, archive);
	else {
		rc = audit_fetch(ctl, 0, 0, verify_line, run);
		run->broken = run->v.r.bad_seq != 0;
	}
	if (rc != CTL_OK)
		return (rc);
	run->r = run->v.r;
	run->start = run->v.start;
	run->head = run->v.head;
	for (i = 0; !run->broken && i < run->ncp; i++)
		verify_judge(&run->cps[i], &run->start, &run->head,
		    run->v.want[i].seen, run->v.want[i].hash);
	return (CTL_OK);
}

static json_t *
verify_cps_json(const struct verify_run *run)
{
	json_t	*list = json_array();
	int	 i;

	for (i = 0; list != NULL && i < run->ncp; i++)
		json_array_append_new(list, json_pack("{ss sI ss sb so so}",
		    "file", run->cps[i].file, "seq",
		    (json_int_t)run->cps[i].cp.seq, "hash",
		    run->cps[i].cp.hash, "ok", run->cps[i].why[0] == '\0',
		    "why", run->cps[i].why[0] ? json_string(run->cps[i].why) :
		    json_null(), "signature", run->cps[i].signed_ok < 0 ?
		    json_null() : json_boolean(run->cps[i].signed_ok)));
	return (list);
}

/* The verdict as lines or JSON; its exit code. */
static int
verify_report(const struct ctl *ctl, const struct verify_run *run)
{
	const struct audit_check	*r = &run->r;
	json_t				*out;
	int				 i, bad_cp = -1;

	for (i = 0; !run->broken && i < run->ncp && bad_cp < 0; i++)
		if (run->cps[i].why[0] != '\0')
			bad_cp = i;
	if (ctl->json) {
		out = json_pack("{sb sI so so sI so so}", "ok", !run->broken &&
		    bad_cp < 0, "records", (json_int_t)r->count, "bad_seq",
		    run->broken ? json_integer(r->bad_seq) : json_null(), "why",
		    run->broken ? json_string(r->why) : json_null(), "start",
		    (json_int_t)run->start.seq, "tagged", run->keys != NULL ?
		    json_integer(r->tagged) : json_null(), "checkpoints",
		    verify_cps_json(run));
		out_json(out);
		json_decref(out);
	}
	if (run->broken)
		return (ctl_fail("audit chain BROKEN at record %lld: %s",
		    (long long)r->bad_seq, r->why));
	if (bad_cp >= 0)
		return (ctl_fail("checkpoint %s: %s", run->cps[bad_cp].file,
		    run->cps[bad_cp].why));
	if (ctl->json)
		return (CTL_OK);
	printf("%s OK: %lld record%s", run->archive ? "archive" :
	    "audit chain", (long long)r->count, r->count == 1 ? "" : "s");
	if (run->start.seq > 0)
		printf(" after record %lld (where it %s)",
		    (long long)run->start.seq, run->archive ? "continues an "
		    "earlier archive" : "was cut");
	if (run->keys != NULL)
		printf(", %lld tagged", (long long)r->tagged);
	if (run->archive)
		printf(", ending in a checkpoint of record %lld (%s)",
		    (long long)run->head.seq, run->v.signatures > 0 ?
		    "signature verified" : "signature not checked: give "
		    "--jwks FILE");
	printf("\n");
	for (i = 0; i < run->ncp; i++)
		printf("checkpoint %s: record %lld holds its hash (%s)\n",
		    run->cps[i].file, (long long)run->cps[i].cp.seq,
		    run->cps[i].signed_ok == 1 ? "signature verified" :
		    "signature not checked: give --jwks FILE");
	return (CTL_OK);
}

static int
audit_cmd_verify(struct ctl *ctl, const struct ctl_cmd *cmd,
    struct ctl_args *a)
{
	struct verify_run	*run;
	const char		*files[AUDIT_STREAM_WANT];
	const char		*archive = a->val[V_ARCHIVE];
	int			 n, i, rc;

	n = ctl_args_all(a, V_CHECKPOINT, files, AUDIT_STREAM_WANT);
	if (n > AUDIT_STREAM_WANT)
		return (ctl_usage(cmd, "at most %d --checkpoint files",
		    AUDIT_STREAM_WANT));
	if (archive == NULL && ctl->db == NULL &&
	    (rc = ctl_need_identity(ctl, cmd)) != 0)
		return (rc);
	if ((run = calloc(1, sizeof(*run))) == NULL)
		return (ctl_fail("out of memory"));
	run->archive = archive != NULL;
	if ((rc = ctl_trust_open(ctl, cmd, 0, &run->t)) != CTL_OK)
		goto done;
	run->keys = run->t.cfg.trust != NULL ? &run->t.keys : NULL;
	/* Signatures need the broker's keys: given, or asked for online. */
	if ((a->val[V_JWKS] != NULL || (archive == NULL && ctl->db == NULL)) &&
	    (rc = verify_jwks(ctl, run, a->val[V_JWKS])) != CTL_OK)
		goto done;
	for (i = 0; i < n; i++)
		if ((rc = verify_read_cp(run, files[i])) != CTL_OK)
			goto done;
	if (archive != NULL || ctl->db == NULL)
		rc = verify_stream(ctl, run, archive);
	else
		rc = verify_db(ctl, run);
	if (rc == CTL_OK)
		rc = verify_report(ctl, run);
 done:
	json_decref(run->jwks);
	ctl_trust_close(&run->t);
	free(run);
	return (rc);
}

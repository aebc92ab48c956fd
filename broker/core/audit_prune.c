/*
 * audit_prune: plan a cut by walking the oldest records until one is not
 * older than `before` (records are appended in time order, so the walk
 * reads only what it prunes), bounded by what must be kept; write the
 * archive through a new file that is synced before the database forgets
 * anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_prune.h"
#include "checkpoint.h"
#include "clock.h"
#include "jsonw.h"
#include "log.h"

struct prune_walk {
	int64_t			 before;
	int64_t			 limit;	/* the newest seq that may go */
	struct audit_head	 last;	/* the newest that goes */
	int			 by_time;	/* stopped at `before` */
	int			 failed;
};

static int
prune_walk_cb(const struct audit_row *row, void *arg)
{
	struct prune_walk	*w = arg;
	json_t			*rec;
	int64_t			 at = 0;
	int			 ok;

	rec = json_loadb(row->record, row->record_len, 0, NULL);
	ok = rec != NULL && clock_parse_rfc3339(json_string_value(
	    json_object_get(rec, "at")), &at) == 0 && row->hash != NULL &&
	    strlen(row->hash) == 64;
	json_decref(rec);
	if (!ok) {
		w->failed = 1;
		return (1);
	}
	if (at >= w->before) {
		w->by_time = 1;
		return (1);
	}
	if (row->seq > w->limit)
		return (1);
	w->last.seq = row->seq;
	memcpy(w->last.hash, row->hash, 65);
	return (0);
}

static int
prune_policy_cb(const struct audit_row *row, void *arg)
{
	*(int64_t *)arg = row->seq;
	return (1);
}

/* Lower *limit to bound - 1 (bound 0: no bound); note why. */
static void
prune_bound(int64_t *limit, int64_t bound, const char *what,
    const char **why)
{
	if (bound > 0 && bound - 1 < *limit) {
		*limit = bound - 1;
		*why = what;
	}
}

int
audit_prune_plan(struct store *s, int64_t before,
    struct audit_prune_plan *plan)
{
	struct audit_cut	 cut;
	struct prune_walk	 w;
	char			 hash[65];
	int64_t			 head, live, policy = 0;
	int			 found;

	memset(plan, 0, sizeof(*plan));
	snprintf(plan->start.hash, sizeof(plan->start.hash), "%s",
	    AUDIT_GENESIS);
	if ((found = s->ops->audit_cut_get(s, &cut)) == -1)
		return (-1);
	if (found) {
		plan->start.seq = cut.seq;
		memcpy(plan->start.hash, cut.hash, sizeof(cut.hash));
		plan->start_jws = cut.checkpoint;
	}
	if (s->ops->audit_head(s, &head, hash) == -1 ||
	    s->ops->audit_live_first(s, &live) == -1 ||
	    s->ops->audit_policy_newest(s, prune_policy_cb, &policy) == -1)
		goto bad;
	memset(&w, 0, sizeof(w));
	w.before = before;
	w.limit = head;
	w.last = plan->start;
	prune_bound(&w.limit, head, "the newest record", &plan->kept_by);
	prune_bound(&w.limit, live, "the records of intents still pending "
	    "or allowed and not redeemed", &plan->kept_by);
	prune_bound(&w.limit, policy, "the record of the policy in force",
	    &plan->kept_by);
	if (s->ops->audit_walk(s, plan->start.seq, 0, prune_walk_cb,
	    &w) == -1 || w.failed)
		goto bad;
	if (w.by_time)
		plan->kept_by = NULL;	/* `before` itself stopped it */
	plan->cut = w.last;
	plan->records = w.last.seq - plan->start.seq;
	return (0);
 bad:
	audit_prune_plan_clear(plan);
	return (-1);
}

void
audit_prune_plan_clear(struct audit_prune_plan *plan)
{
	free(plan->start_jws);
	memset(plan, 0, sizeof(*plan));
}

struct archive_out {
	FILE	*f;
	int	 failed;
};

/* One JSON line: numbers as RFC 8785 writes them, like audit export. */
static int
archive_line(FILE *f, const json_t *v)
{
	char	*s;
	int	 rc;

	if ((s = jsonw_dump(v, JSONW_PLAIN, NULL)) == NULL)
		return (-1);
	rc = fprintf(f, "%s\n", s) < 0 ? -1 : 0;
	free(s);
	return (rc);
}

static int
archive_record_cb(json_t *rec, void *arg)
{
	struct archive_out	*o = arg;

	if (archive_line(o->f, rec) == -1)
		o->failed = 1;
	return (o->failed);
}

/* A one-member line {name: token}. */
static int
archive_token(FILE *f, const char *name, const char *tok)
{
	json_t	*o = json_pack("{ss}", name, tok);
	int	 rc = o != NULL ? archive_line(f, o) : -1;

	json_decref(o);
	return (rc);
}

int
audit_archive_write(struct store *s, const struct audit_prune_plan *plan,
    const char *path, EVP_PKEY *key, json_t *header, int64_t now,
    char **jws, char *err, size_t errlen)
{
	struct archive_out	 o = { NULL, 0 };
	int			 fd;

	*jws = checkpoint_sign(key, header, plan->cut.seq, plan->cut.hash,
	    now);
	if (*jws == NULL) {
		snprintf(err, errlen, "cannot sign the checkpoint of the cut");
		return (-1);
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1 || (o.f = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
		    errno == EEXIST ? " (an archive is never overwritten)" :
		    "");
		if (fd != -1)
			close(fd);
		goto bad;
	}
	if ((plan->start_jws != NULL && archive_token(o.f, "start",
	    plan->start_jws) == -1) || audit_each(s, plan->start.seq,
	    plan->records, archive_record_cb, &o) == -1 || o.failed ||
	    archive_token(o.f, "checkpoint", *jws) == -1 ||
	    fflush(o.f) == EOF || fsync(fileno(o.f)) == -1) {
		snprintf(err, errlen, "%s: cannot write the archive: %s", path,
		    strerror(errno));
		fclose(o.f);
		unlink(path);
		goto bad;
	}
	if (fclose(o.f) == EOF) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(path);
		goto bad;
	}
	return (0);
 bad:
	free(*jws);
	*jws = NULL;
	return (-1);
}

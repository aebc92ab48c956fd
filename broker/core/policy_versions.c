/*
 * policy_versions: the history of policy versions as JSON (see the
 * header).  One store read; no bodies, which can be megabytes each.
 */
#include "clock.h"
#include "policy_versions.h"

struct versions_page {
	json_t	*items;
	int64_t	 last;
	int	 failed;
};

static int
versions_cb(const struct policy_version_row *r, void *arg)
{
	struct versions_page	*pg = arg;
	char			 at[RFC3339_LEN];

	clock_rfc3339(r->at, at);
	if (json_array_append_new(pg->items, json_pack("{sI ss ss ss}",
	    "version", (json_int_t)r->version, "applied_at", at, "applied_by",
	    r->actor, "sha256", r->sha256)) == -1)
		pg->failed = 1;
	pg->last = r->version;
	return (pg->failed);
}

json_t *
policy_versions_json(struct store *s, int64_t before, int64_t limit)
{
	struct versions_page	 pg = { json_array(), 0, 0 };

	/* One more than asked for would tell whether another page exists;
	 * version 1 is the oldest there can be, which is as good. */
	if (pg.items == NULL || s->ops->policy_history(s, before, limit,
	    versions_cb, &pg) == -1 || pg.failed) {
		json_decref(pg.items);
		return (NULL);
	}
	return (json_pack("{so so}", "items", pg.items, "next_before",
	    (int64_t)json_array_size(pg.items) == limit && pg.last > 1 ?
	    json_integer(pg.last) : json_null()));
}

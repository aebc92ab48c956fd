/*
 * killswitch: operators' emergency stops (CONTRACT §4).  Every trip and
 * reset moves the store's kill switch generation in the same transaction,
 * so a reader (any thread, any process on the same database) learns that
 * something changed from one counter read and reloads the engaged
 * switches only then.  Here: validation, matching and the cache; the
 * trip and reset transactions are the lifecycle's (lifecycle.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "killswitch.h"
#include "log.h"
#include "policy.h"
#include "text.h"

void
ks_cache_init(struct ks_cache *c)
{
	memset(c, 0, sizeof(*c));
	c->generation = -1;
}

static void
ks_entries_free(struct ks_entry *v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(v[i].target);
	free(v);
}

/* Frees the entries; c is left as after ks_cache_init (never read). */
void
ks_cache_clear(struct ks_cache *c)
{
	ks_entries_free(c->v, c->n);
	ks_cache_init(c);
}

struct ks_load {
	struct ks_entry	*v;
	size_t		 n, cap;
	int		 failed;
};

static int
ks_load_cb(const struct ks_row *r, void *arg)
{
	struct ks_load	*l = arg;
	struct ks_entry	*nv;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		if ((nv = reallocarray(l->v, l->cap, sizeof(*nv))) == NULL)
			goto fail;
		l->v = nv;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
	l->v[l->n].id = r->id;
	l->v[l->n].scope = r->scope;
	if (r->target != NULL &&
	    (l->v[l->n].target = strdup(r->target)) == NULL)
		goto fail;
	l->n++;
	return (0);
 fail:
	l->failed = 1;
	return (1);
}

int
ks_cache_load(struct store *s, struct ks_cache *c, int64_t generation)
{
	struct ks_load	 l;

	memset(&l, 0, sizeof(l));
	if (s->ops->ks_engaged(s, ks_load_cb, &l) == -1 || l.failed) {
		ks_entries_free(l.v, l.n);
		return (-1);
	}
	ks_entries_free(c->v, c->n);
	c->v = l.v;
	c->n = l.n;
	c->generation = generation;
	return (0);
}

int
ks_refresh(struct store *s, struct ks_cache *c)
{
	struct store_gen	 g;

	if (s->ops->generations(s, STORE_GEN_KILLSWITCH, &g) == -1)
		return (-1);
	if (g.killswitch == c->generation)
		return (0);
	return (ks_cache_load(s, c, g.killswitch));
}

int
ks_scope_covers(enum ks_scope scope, const char *target, const char *agent,
    const char *tool)
{
	switch (scope) {
	case KS_GLOBAL:
		return (1);
	case KS_AGENT:
		return (agent != NULL && target != NULL &&
		    strcmp(agent, target) == 0);
	case KS_TOOL:
		return (tool != NULL && policy_pattern_match(target, tool));
	}
	return (1);	/* unknown scope: fail closed */
}

int
ks_covers(const struct ks_cache *c, const char *agent, const char *tool)
{
	size_t	 i;

	for (i = 0; i < c->n; i++)
		if (ks_scope_covers(c->v[i].scope, c->v[i].target, agent,
		    tool))
			return (1);
	return (0);
}

const char *
ks_check_reason(const char *reason)
{
	const char	*why;

	if (reason == NULL || reason[0] == '\0')
		return ("a reason is required");
	if ((why = text_check(reason, TEXT_MAX_REASON, TEXT_NOT_BLANK)) ==
	    NULL)
		return (NULL);
	if (strcmp(why, "is too long") == 0)
		return ("reason is longer than 1024 characters");
	if (strcmp(why, "is blank") == 0)
		return ("reason is blank");
	return ("reason is not valid UTF-8");
}

static const char *
ks_check_agent(const char *target)
{
	size_t	 i, len;

	if (target == NULL || target[0] == '\0')
		return ("an agent switch needs a target identity");
	len = strlen(target);
	if (len > KS_AGENT_MAX)
		return ("agent target is longer than 255 bytes");
	for (i = 0; i < len; i++)
		if ((unsigned char)target[i] < 0x20 || target[i] == 0x7f)
			return ("agent target has control characters");
	if (text_chars(target) < 0)
		return ("agent target is not valid UTF-8");
	return (NULL);
}

static const char *
ks_check_tool(const char *target)
{
	size_t	 len;
	char	*prefix;
	int	 ok;

	if (target == NULL || target[0] == '\0')
		return ("a tool switch needs a target tool or prefix.* pattern");
	/* the tool grammar as CONTRACT §9 widens it: MCP tools may have
	 * upper case, and a switch must be able to stop them */
	if (policy_mcp_name_valid(target))
		return (NULL);
	len = strlen(target);
	if (len < 3 || strcmp(target + len - 2, ".*") != 0)
		return ("tool target must be a tool name or a prefix.* "
		    "pattern");
	if ((prefix = strndup(target, len - 2)) == NULL)
		return ("out of memory");
	ok = policy_mcp_name_valid(prefix);
	free(prefix);
	return (ok ? NULL : "tool target must be a tool name or a prefix.* "
	    "pattern");
}

const char *
ks_check_target(enum ks_scope scope, const char *target)
{
	switch (scope) {
	case KS_GLOBAL:
		return (target == NULL ? NULL :
		    "a global switch takes no target");
	case KS_AGENT:
		return (ks_check_agent(target));
	case KS_TOOL:
		return (ks_check_tool(target));
	}
	return ("scope must be global, agent or tool");
}

static json_t *
ks_time(int64_t t)
{
	char	 buf[RFC3339_LEN];

	clock_rfc3339(t, buf);
	return (json_string(buf));
}

static json_t *
ks_text(const char *s)
{
	return (s ? json_string(s) : json_null());
}

json_t *
ks_json(const struct ks_row *r)
{
	json_t	*o;

	o = json_pack("{sI ss so so so so}", "id", (json_int_t)r->id,
	    "scope", ks_scope_name(r->scope), "target", ks_text(r->target),
	    "reason", ks_text(r->reason), "by", ks_text(r->by),
	    "at", ks_time(r->at));
	if (o == NULL || r->reset_at == 0)
		return (o);
	if (json_object_set_new(o, "reset_by", ks_text(r->reset_by)) == -1 ||
	    json_object_set_new(o, "reset_at", ks_time(r->reset_at)) == -1 ||
	    json_object_set_new(o, "reset_reason",
	    ks_text(r->reset_reason)) == -1) {
		json_decref(o);
		return (NULL);
	}
	return (o);
}

json_t *
ks_get(struct store *s, int64_t id)
{
	struct ks_row	 r;
	json_t		*o;

	if (s->ops->ks_get(s, id, &r) != 1)
		return (NULL);
	o = ks_json(&r);
	ks_row_clear(&r);
	return (o);
}

struct ks_list {
	json_t	*items;
	int	 failed;
};

static int
ks_status_cb(const struct ks_row *r, void *arg)
{
	struct ks_list	*l = arg;
	json_t		*o = ks_json(r);

	if (o == NULL || json_array_append_new(l->items, o) == -1)
		l->failed = 1;
	return (l->failed);
}

json_t *
ks_status(struct store *s)
{
	struct ks_list	 l = { json_array(), 0 };

	if (l.items == NULL)
		return (NULL);
	if (s->ops->ks_engaged(s, ks_status_cb, &l) == -1 || l.failed) {
		json_decref(l.items);
		return (NULL);
	}
	return (json_pack("{sb so}", "engaged", json_array_size(l.items) > 0,
	    "switches", l.items));
}

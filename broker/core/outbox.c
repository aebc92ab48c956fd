/*
 * outbox: event types, patterns, rules, each event's data, and writing
 * outbox rows (outbox.h; proto/events.md documents every event).  The
 * data of an event is built from what the change itself wrote — the
 * intent row as stored, the audit record's details — so an event never
 * says more than the audit does (redacted args stay redacted) and never
 * reports what did not commit.  Nothing here sends anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "canon.h"
#include "clock.h"
#include "lifecycle.h"
#include "log.h"
#include "outbox.h"

static const char *const type_names[EV__COUNT] = {
	[EV_INTENT_PENDING] = "intent.pending",
	[EV_INTENT_ALLOWED] = "intent.allowed",
	[EV_INTENT_REJECTED] = "intent.rejected",
	[EV_INTENT_EXPIRED] = "intent.expired",
	[EV_KILLSWITCH_TRIPPED] = "killswitch.tripped",
	[EV_KILLSWITCH_RESET] = "killswitch.reset",
	[EV_POLICY_APPLIED] = "policy.applied",
	[EV_AUDIT_RECORD] = "audit.record",
	[EV_AUDIT_CHECKPOINT] = "audit.checkpoint",
};

const char *
outbox_type_name(enum outbox_type t)
{
	return ((unsigned)t < EV__COUNT ? type_names[t] : "unknown");
}

int
outbox_type_parse(const char *name, enum outbox_type *t)
{
	int	 i;

	for (i = 0; i < EV__COUNT; i++)
		if (strcmp(type_names[i], name) == 0) {
			*t = (enum outbox_type)i;
			return (0);
		}
	return (-1);
}

/* "word(.word)*" with lowercase words, n bytes. */
static int
outbox_dotted(const char *s, size_t n)
{
	size_t	 i, word = 0;

	for (i = 0; i < n; i++) {
		if (s[i] >= 'a' && s[i] <= 'z')
			word++;
		else if (s[i] == '.' && word > 0)
			word = 0;
		else
			return (0);
	}
	return (word > 0);
}

/* The types one pattern of n bytes selects. */
static const char *
outbox_pattern(const char *p, size_t n, unsigned *mask)
{
	size_t	 i, plen;
	int	 prefix = n >= 2 && p[n - 2] == '.' && p[n - 1] == '*';

	*mask = 0;
	if (n == 0)
		return ("an empty pattern");
	plen = prefix ? n - 1 : n;	/* "intent." of "intent.*" */
	if (!outbox_dotted(p, prefix ? n - 2 : n))
		return ("a pattern is an event type or PREFIX.* (lowercase "
		    "words and dots)");
	for (i = 0; i < EV__COUNT; i++)
		if (prefix ? strncmp(type_names[i], p, plen) == 0 :
		    strlen(type_names[i]) == n &&
		    strncmp(type_names[i], p, n) == 0)
			*mask |= EV_BIT(i);
	if (*mask == 0)
		return ("a pattern selects no event type (types: "
		    "intent.pending, intent.allowed, intent.rejected, "
		    "intent.expired, killswitch.tripped, killswitch.reset, "
		    "policy.applied, audit.record, audit.checkpoint)");
	return (NULL);
}

int
outbox_patterns(const char *list, unsigned *mask, const char **why)
{
	const char	*p, *end;
	unsigned	 m;

	*mask = 0;
	*why = NULL;
	if (list == NULL || list[0] == '\0' ||
	    strlen(list) > OUTBOX_EVENTS_MAX) {
		*why = "events= needs one or more patterns (at most 512 bytes)";
		return (-1);
	}
	for (p = list;; p = end + 1) {
		end = p + strcspn(p, ",");
		if ((*why = outbox_pattern(p, (size_t)(end - p), &m)) != NULL)
			return (-1);
		*mask |= m;
		if (*end == '\0')
			return (0);
	}
}

int64_t
outbox_backoff(int64_t n)
{
	int64_t	 d = 1;

	while (--n > 0 && d < OUTBOX_BACKOFF_MAX)
		d *= 2;
	return (d > OUTBOX_BACKOFF_MAX ? OUTBOX_BACKOFF_MAX : d);
}

int
outbox_sink_name_valid(const char *name)
{
	size_t	 n = strlen(name);

	return (n >= 1 && n <= OUTBOX_NAME_MAX && strspn(name,
	    "abcdefghijklmnopqrstuvwxyz0123456789_-") == n);
}

int
outbox_rules_add(struct outbox_rules *r, const char *name, unsigned types)
{
	size_t	 i;

	if (r->n == OUTBOX_SINKS_MAX || !outbox_sink_name_valid(name))
		return (-1);
	for (i = 0; i < r->n; i++)
		if (strcmp(r->sink[i].name, name) == 0)
			return (-1);
	snprintf(r->sink[r->n].name, sizeof(r->sink[r->n].name), "%s", name);
	r->sink[r->n++].types = types;
	r->any |= types;
	return (0);
}

static int
outbox_rules_cb(const struct sink_row *row, void *arg)
{
	struct outbox_rules	*r = arg;
	const char		*why;
	unsigned		 types;

	/* A sink a newer broker registered with types this one does not
	 * know keeps what it can; one that cannot be read is left out. */
	if (outbox_patterns(row->events, &types, &why) == -1 ||
	    outbox_rules_add(r, row->name, types) == -1)
		log_warnx("sink %s: its events \"%s\" are not usable here",
		    row->name, row->events);
	return (0);
}

int
outbox_rules_load(struct store *s, struct outbox_rules *r)
{
	memset(r, 0, sizeof(*r));
	return (s->ops->sink_status(s, outbox_rules_cb, r));
}

static json_t *outbox_time(int64_t t);

json_t *
outbox_sink_json(const struct sink_row *r, int64_t now)
{
	json_t	*v;

	v = json_pack("{ss ss ss sI so sI sI sI sI sI so so so so s{so so}}",
	    "name", r->name, "target", r->target, "events", r->events,
	    "queued", (json_int_t)r->queued,
	    "oldest_queued_at", outbox_time(r->oldest_at),
	    "delivered", (json_int_t)r->delivered,
	    "failed", (json_int_t)r->failed,
	    "given_up", (json_int_t)r->given_up,
	    "dropped", (json_int_t)r->dropped,
	    "failing", (json_int_t)r->attempts,
	    "next_attempt_at", outbox_time(r->attempts > 0 ? r->next_at : 0),
	    "last_error", r->last_error ? json_string(r->last_error) :
	    json_null(),
	    "last_error_at", outbox_time(r->last_error_at),
	    "last_delivered_at", outbox_time(r->last_delivered_at),
	    "lease", "owner", r->lease_owner && r->lease_until > now ?
	    json_string(r->lease_owner) : json_null(),
	    "until", outbox_time(r->lease_owner && r->lease_until > now ?
	    r->lease_until : 0));
	return (v);
}

int
outbox_event_id(char out[OUTBOX_EVENT_ID_LEN + 1])
{
	char	 id[INTENT_ID_LEN + 1];

	/* The intent id's shape (time-ordered, 80 random bits), "ev_". */
	if (intent_id_new(id) == -1)
		return (-1);
	memcpy(out, "ev", 2);
	memcpy(out + 2, id + 2, OUTBOX_EVENT_ID_LEN - 1);
	out[OUTBOX_EVENT_ID_LEN] = '\0';
	return (0);
}

int
outbox_emit(struct store *s, const struct outbox_rules *r, enum outbox_type t,
    int64_t at, json_t *data, int64_t audit_seq)
{
	struct outbox_row	 row;
	char			 id[OUTBOX_EVENT_ID_LEN + 1], *text = NULL;
	size_t			 i;
	int			 rc = 0;

	if (r == NULL || !(r->any & EV_BIT(t)))
		return (0);
	if (outbox_event_id(id) == -1 ||
	    (data != NULL && (text = canon_dump(data)) == NULL)) {
		log_warnx("%s: cannot write a %s event", __func__,
		    outbox_type_name(t));
		return (-1);
	}
	memset(&row, 0, sizeof(row));
	row.event_id = id;
	row.type = outbox_type_name(t);
	row.at = at;
	row.audit_seq = audit_seq;
	row.data = text;
	for (i = 0; rc == 0 && i < r->n; i++)
		if (r->sink[i].types & EV_BIT(t)) {
			row.sink = r->sink[i].name;
			rc = s->ops->outbox_add(s, &row);
		}
	free(text);
	return (rc);
}

/* --- the events' data --------------------------------------------------- */

static json_t *
outbox_time(int64_t t)
{
	char	 at[RFC3339_LEN];

	if (t == 0)
		return (json_null());
	clock_rfc3339(t, at);
	return (json_string(at));
}

/* {id, agent, tool, amount}: what every intent event starts with. */
static json_t *
outbox_intent_base(const struct intent_row *r)
{
	json_t	*v;

	v = json_pack("{ss ss ss so}", "id", r->id, "agent", r->agent,
	    "tool", r->tool, "amount", r->amount_value != NULL &&
	    r->amount_currency != NULL ? json_pack("{ss ss}", "value",
	    r->amount_value, "currency", r->amount_currency) : json_null());
	return (v);
}

/* A JSON text stored by the lifecycle (approver roles), or null. */
static json_t *
outbox_stored_json(const char *text)
{
	json_t	*v = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) :
	    NULL;

	return (v ? v : json_null());
}

static json_t *
outbox_pending_data(const struct intent_row *r, json_t *details)
{
	json_t	*v = outbox_intent_base(r), *args;
	int	 failed;

	if (v == NULL)
		return (NULL);
	/* The args exactly as the audit record keeps them. */
	if ((args = json_object_get(details, "args")) != NULL)
		failed = json_object_set(v, "args", args);
	else
		failed = json_object_set(v, "args_sha256",
		    json_object_get(details, "args_sha256") ?
		    json_object_get(details, "args_sha256") : json_null());
	failed |= json_object_set_new(v, "reason", r->agent_reason ?
	    json_string(r->agent_reason) : json_null());
	failed |= json_object_set_new(v, "approvals_required",
	    json_integer(r->approvals_required));
	failed |= json_object_set_new(v, "approver_roles",
	    outbox_stored_json(r->approver_roles));
	failed |= json_object_set_new(v, "created_at",
	    outbox_time(r->created_at));
	failed |= json_object_set_new(v, "expires_at",
	    outbox_time(r->expires_at));
	failed |= json_object_set_new(v, "policy_version",
	    json_integer(r->policy_version));
	if (failed) {
		json_decref(v);
		return (NULL);
	}
	return (v);
}

/* The intent as the move left it: status, approvals, who closed it. */
static json_t *
outbox_closed_data(const struct intent_row *r)
{
	json_t	*v = outbox_intent_base(r), *list;
	size_t	 i;
	int	 failed;

	if (v == NULL || (list = json_array()) == NULL) {
		json_decref(v);
		return (NULL);
	}
	failed = json_object_set_new(v, "approvals", list);
	for (i = 0; i < r->n_approvals; i++)
		failed |= json_array_append_new(list, json_pack("{ss so so}",
		    "by", r->approvals[i].by, "at",
		    outbox_time(r->approvals[i].at), "comment",
		    r->approvals[i].comment ? json_string(
		    r->approvals[i].comment) : json_null()));
	failed |= json_object_set_new(v, "status",
	    json_string(intent_status_name(r->status)));
	failed |= json_object_set_new(v, "approvals_required",
	    json_integer(r->approvals_required));
	failed |= json_object_set_new(v, "decided_at",
	    outbox_time(r->decided_at));
	if (r->status == ST_REJECTED)
		failed |= json_object_set_new(v, "by", r->closed_by ?
		    json_string(r->closed_by) : json_null()) |
		    json_object_set_new(v, "reason", r->closed_reason ?
		    json_string(r->closed_reason) : json_null());
	else if (r->status == ST_ALLOWED && r->n_approvals > 0)
		failed |= json_object_set_new(v, "by",
		    json_string(r->approvals[r->n_approvals - 1].by));
	if (failed) {
		json_decref(v);
		return (NULL);
	}
	return (v);
}

static int
outbox_moved(struct decider *d, const struct intent_move *m, int64_t now)
{
	struct intent_row	 r;
	enum outbox_type	 t;
	json_t			*data;
	int			 rc;

	/* Only an intent that was waiting for approvers is news to them. */
	if (m->from != ST_PENDING)
		return (0);
	switch (m->to) {
	case ST_ALLOWED: t = EV_INTENT_ALLOWED; break;
	case ST_REJECTED: t = EV_INTENT_REJECTED; break;
	case ST_EXPIRED: t = EV_INTENT_EXPIRED; break;
	default: return (0);
	}
	if (!(d->cfg.outbox->any & EV_BIT(t)))
		return (0);
	/* As this transaction left it. */
	if (d->store->ops->intent_get(d->store, m->id, STORE_APPROVALS,
	    &r) != 1)
		return (-1);
	if ((data = outbox_closed_data(&r)) == NULL)
		rc = -1;
	else
		rc = outbox_emit(d->store, d->cfg.outbox, t, now, data, 0);
	json_decref(data);
	intent_row_clear(&r);
	return (rc);
}

int
outbox_on_intent(struct decider *d, const struct intent_row *inserted,
    const struct intent_move *moved, int64_t now, json_t *details)
{
	json_t	*data;
	int	 rc = 0;

	if (d->cfg.outbox == NULL || d->cfg.outbox->any == 0)
		return (0);
	if (moved != NULL)
		rc = outbox_moved(d, moved, now);
	else if (inserted != NULL && inserted->status == ST_PENDING &&
	    (d->cfg.outbox->any & EV_BIT(EV_INTENT_PENDING))) {
		if ((data = outbox_pending_data(inserted, details)) == NULL)
			return (-1);
		rc = outbox_emit(d->store, d->cfg.outbox, EV_INTENT_PENDING,
		    now, data, 0);
		json_decref(data);
	} else
		return (0);
	if (rc == 0)
		d->changed.events = 1;
	return (rc);
}

/* The event a record reports besides audit.record, by its event name. */
static int
outbox_record_type(const char *event, enum outbox_type *t)
{
	static const struct {
		const char		*event;
		enum outbox_type	 type;
	} map[] = {
		{ "killswitch.trip", EV_KILLSWITCH_TRIPPED },
		{ "killswitch.reset", EV_KILLSWITCH_RESET },
		{ "policy.apply", EV_POLICY_APPLIED },
	};
	size_t	 i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].event, event) == 0) {
			*t = map[i].type;
			return (1);
		}
	return (0);
}

int
outbox_on_audit(struct decider *d, int64_t now, const char *actor,
    const char *event, json_t *details)
{
	const struct outbox_rules	*r = d->cfg.outbox;
	enum outbox_type		 t;
	json_t				*data;
	char				 hash[65];
	int64_t				 seq;
	int				 rc;

	if (r == NULL || r->any == 0)
		return (0);
	if (r->any & EV_BIT(EV_AUDIT_RECORD)) {
		/* The record just appended: the head this transaction
		 * holds.  Its bytes are read when it is sent. */
		if (d->store->ops->audit_head(d->store, &seq, hash) == -1 ||
		    outbox_emit(d->store, r, EV_AUDIT_RECORD, now, NULL,
		    seq) == -1)
			return (-1);
		d->changed.events = 1;
	}
	if (!outbox_record_type(event, &t) || !(r->any & EV_BIT(t)))
		return (0);
	data = details != NULL ? json_deep_copy(details) : json_object();
	if (data == NULL || json_object_set_new(data, "by",
	    json_string(actor)) == -1)
		rc = -1;
	else
		rc = outbox_emit(d->store, r, t, now, data, 0);
	json_decref(data);
	if (rc == 0)
		d->changed.events = 1;
	return (rc);
}

json_t *
outbox_checkpoint_data(struct store *s, int64_t now)
{
	char	 hash[65];
	int64_t	 seq;

	if (s->ops->audit_head(s, &seq, hash) == -1)
		return (NULL);
	return (json_pack("{sI ss so}", "seq", (json_int_t)seq, "hash", hash,
	    "at", outbox_time(now)));
}

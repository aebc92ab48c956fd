/*
 * events_api: what operators see of event delivery — GET
 * /v1/events/status (every sink the database knows: its queue, its
 * counters, its last error, which broker delivers it; read from the
 * database, so it is the same on every broker) and the per-sink lines of
 * /metrics.  Read-only; a sink's URL path (a secret for Slack) is never
 * shown, only scheme://host:port.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "clock.h"
#include "events.h"

struct status_walk {
	const struct events_config	*cfg;
	json_t				*items;
	int64_t				 now;
	int				 failed;
};

static const struct events_sink *
events_configured(const struct events_config *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->sink[i].name, name) == 0)
			return (&c->sink[i]);
	return (NULL);
}

static int
status_cb(const struct sink_row *r, void *arg)
{
	struct status_walk		*sw = arg;
	const struct events_sink	*s = events_configured(sw->cfg,
					    r->name);
	json_t				*v;

	if ((v = outbox_sink_json(r, sw->now)) == NULL ||
	    json_object_set_new(v, "configured", json_boolean(s != NULL)) ==
	    -1 || json_object_set_new(v, "format", s ? json_string(
	    webhook_format_name(s->format)) : json_null()) == -1 ||
	    json_array_append_new(sw->items, v) == -1) {
		sw->failed = 1;
		return (1);
	}
	return (0);
}

void
api_events_status(struct request *rq)
{
	const struct events_config	*c = &rq->w->broker->events;
	struct store			*s = rq->w->store;
	struct status_walk		 sw;

	memset(&sw, 0, sizeof(sw));
	sw.cfg = c;
	sw.now = clock_now();
	if ((sw.items = json_array()) == NULL ||
	    s->ops->sink_status(s, status_cb, &sw) == -1 || sw.failed) {
		json_decref(sw.items);
		http_reply_error(rq, E_UNAVAILABLE, NULL);
		return;
	}
	http_reply_json(rq, 200, json_pack("{so s{sI sI sI sI}}", "sinks",
	    sw.items, "settings", "retry_for", (json_int_t)c->retry_for,
	    "timeout", (json_int_t)c->timeout,
	    "queue_max", (json_int_t)c->queue_max,
	    "checkpoint_every", (json_int_t)c->checkpoint_every));
}

/* --- /metrics ----------------------------------------------------------------- */

#define METRICS_SINKS	64	/* sinks a database may hold, shown */

struct metrics_walk {
	struct {
		char	 name[OUTBOX_NAME_MAX + 1];
		int64_t	 v[6];
	}		 sink[METRICS_SINKS];
	size_t		 n;
};

static const struct {
	const char	*name;
	const char	*type;
	const char	*help;
} event_metrics[] = {
	{ "toolgate_events_queued", "gauge", "Events waiting for a sink." },
	{ "toolgate_events_delivered_total", "counter",
	    "Events a sink acknowledged (2xx)." },
	{ "toolgate_events_failed_total", "counter",
	    "Delivery attempts that failed (retried)." },
	{ "toolgate_events_given_up_total", "counter",
	    "Events not delivered within notify-retry-for." },
	{ "toolgate_events_dropped_total", "counter",
	    "Events dropped at notify-queue-max (audit records first)." },
	{ "toolgate_events_failing", "gauge",
	    "Failed attempts in a row (0: the sink is healthy)." },
};
#define EVENT_METRICS	(sizeof(event_metrics) / sizeof(event_metrics[0]))

static int
metrics_cb(const struct sink_row *r, void *arg)
{
	struct metrics_walk	*mw = arg;

	if (mw->n == METRICS_SINKS || strlen(r->name) > OUTBOX_NAME_MAX)
		return (mw->n == METRICS_SINKS);
	snprintf(mw->sink[mw->n].name, sizeof(mw->sink[0].name), "%s",
	    r->name);
	mw->sink[mw->n].v[0] = r->queued;
	mw->sink[mw->n].v[1] = r->delivered;
	mw->sink[mw->n].v[2] = r->failed;
	mw->sink[mw->n].v[3] = r->given_up;
	mw->sink[mw->n].v[4] = r->dropped;
	mw->sink[mw->n++].v[5] = r->attempts;
	return (0);
}

int
events_metrics(struct worker *w, char **text, size_t *len)
{
	struct store		*s = w->store;
	struct metrics_walk	*mw;
	char			*out;
	size_t			 i, j, cap, used;

	if (w->broker->events.n == 0)
		return (0);
	if ((mw = calloc(1, sizeof(*mw))) == NULL)
		return (-1);
	if (s->ops->sink_status(s, metrics_cb, mw) == -1) {
		free(mw);
		return (-1);
	}
	cap = *len + EVENT_METRICS * (256 + mw->n * 160) + 1;
	if ((out = malloc(cap)) == NULL) {
		free(mw);
		return (-1);
	}
	memcpy(out, *text, *len);
	used = *len;
	/* Sink names are [a-z0-9_-]: nothing to escape in a label. */
	for (i = 0; i < EVENT_METRICS; i++) {
		used += (size_t)snprintf(out + used, cap - used,
		    "# HELP %s %s\n# TYPE %s %s\n", event_metrics[i].name,
		    event_metrics[i].help, event_metrics[i].name,
		    event_metrics[i].type);
		for (j = 0; j < mw->n; j++)
			used += (size_t)snprintf(out + used, cap - used,
			    "%s{sink=\"%s\"} %lld\n", event_metrics[i].name,
			    mw->sink[j].name, (long long)mw->sink[j].v[i]);
	}
	free(mw);
	free(*text);
	*text = out;
	*len = used;
	return (0);
}

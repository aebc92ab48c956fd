/*
 * cmd_events: toolgatectl events status — how event delivery to the
 * notify sinks goes (CONTRACT §10): per sink its queue, what was
 * delivered, failed, given up and dropped, and the last error.  Online it
 * reads GET /v1/events/status (operator); with --db the same facts from
 * the database itself (outbox.c renders them alike), so it works with the
 * broker down.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clock.h"
#include "ctl.h"
#include "outbox.h"

static int	events_cmd_status(struct ctl *, const struct ctl_cmd *,
		    struct ctl_args *);

static const struct ctl_opt opts_none[] = { { NULL, NULL, NULL, 0 } };

const struct ctl_cmd cmd_events[] = {
	{ "status", "events status", "",
	    "per sink: events queued, delivered, failed, given up, dropped, "
	    "and the last error (--db: from the database)",
	    "toolgatectl events status",
	    opts_none, 0, events_cmd_status, NULL },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL }
};

static const char *const status_head[] = {
	"SINK", "TARGET", "QUEUED", "DELIVERED", "FAILED", "GIVEN UP",
	"DROPPED", "LAST ERROR"
};
#define STATUS_NCOLS	(sizeof(status_head) / sizeof(status_head[0]))

static void
status_count(const json_t *sink, const char *key, char *buf, size_t len)
{
	snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
	    json_integer_value(json_object_get(sink, key)));
}

/* "HTTP 500 (3 in a row, 2m ago)", or "-". */
static void
status_error(const json_t *sink, int64_t now, char *buf, size_t len)
{
	const char	*err = json_string_value(json_object_get(sink,
			    "last_error"));
	json_int_t	 failing = json_integer_value(json_object_get(sink,
			    "failing"));
	char		 ago[32] = "";
	int64_t		 at;

	if (err == NULL) {
		snprintf(buf, len, "-");
		return;
	}
	if (out_time(sink, "last_error_at", &at) == 0)
		clock_duration(now - at, ago, sizeof(ago));
	if (failing > 0)
		snprintf(buf, len, "%s (%" JSON_INTEGER_FORMAT " in a row, "
		    "%s ago)", err, failing, ago);
	else
		snprintf(buf, len, "%s (%s ago; delivering since)", err, ago);
}

static int
status_print(const json_t *sinks)
{
	struct out_table	*t;
	const json_t		*v;
	const char		*cells[STATUS_NCOLS];
	char			 n[5][24], err[320];
	int64_t			 now = clock_now();
	size_t			 i, k;

	if (json_array_size(sinks) == 0) {
		printf("no notify sinks (set notify = NAME URL in toolgated's "
		    "--config)\n");
		return (CTL_OK);
	}
	if ((t = out_table_new(STATUS_NCOLS, status_head)) == NULL)
		return (ctl_fail("out of memory"));
	json_array_foreach(sinks, i, v) {
		static const char *const keys[5] = { "queued", "delivered",
		    "failed", "given_up", "dropped" };

		cells[0] = out_str(v, "name");
		cells[1] = out_str(v, "target");
		for (k = 0; k < 5; k++) {
			status_count(v, keys[k], n[k], sizeof(n[k]));
			cells[2 + k] = n[k];
		}
		status_error(v, now, err, sizeof(err));
		cells[7] = err;
		if (out_table_row(t, cells) == -1) {
			out_table_free(t);
			return (ctl_fail("out of memory"));
		}
		if (json_integer_value(json_object_get(v, "failing")) > 0)
			out_table_warn(t, STATUS_NCOLS - 1);
	}
	out_table_print(t);
	out_table_free(t);
	return (CTL_OK);
}

struct status_db {
	json_t	*sinks;
	int64_t	 now;
	int	 failed;
};

static int
status_db_cb(const struct sink_row *r, void *arg)
{
	struct status_db	*sd = arg;

	if (json_array_append_new(sd->sinks, outbox_sink_json(r, sd->now)) ==
	    -1) {
		sd->failed = 1;
		return (1);
	}
	return (0);
}

/* The status document from the database itself. */
static int
status_offline(const struct ctl *ctl, json_t **doc)
{
	struct store		*s;
	struct status_db	 sd;
	int			 rc;

	*doc = NULL;
	if ((rc = ctl_store_open(ctl, 0, &s)) != CTL_OK)
		return (rc);
	memset(&sd, 0, sizeof(sd));
	sd.now = clock_now();
	if ((sd.sinks = json_array()) == NULL ||
	    s->ops->sink_status(s, status_db_cb, &sd) == -1 || sd.failed) {
		json_decref(sd.sinks);
		store_close(s);
		return (ctl_fail("--db %s: cannot read the sinks", ctl->db));
	}
	store_close(s);
	*doc = json_pack("{so}", "sinks", sd.sinks);
	return (*doc != NULL ? CTL_OK : ctl_fail("out of memory"));
}

static int
events_cmd_status(struct ctl *ctl, const struct ctl_cmd *cmd,
    struct ctl_args *a)
{
	json_t	*doc = NULL;
	int	 rc, code;

	if (ctl->db != NULL)
		rc = status_offline(ctl, &doc);
	else if ((rc = ctl_need_identity(ctl, cmd)) == CTL_OK)
		rc = ctl_call(ctl, "GET", "/v1/events/status", NULL, NULL, 0,
		    &code, &doc);
	if (rc != CTL_OK)
		return (rc);
	if (!json_is_array(json_object_get(doc, "sinks")))
		rc = ctl_fail("%s answered without a sinks list", ctl->url);
	else if (ctl->json)
		out_json(doc);
	else
		rc = status_print(json_object_get(doc, "sinks"));
	json_decref(doc);
	return (rc);
}

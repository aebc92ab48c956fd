/*
 * audit_stream: one line at a time, so a stream of any length is checked
 * in constant memory.  Records go through audit_check_json, the same
 * check GET /v1/audit's records and an archive's get.
 */
#include <stdio.h>
#include <string.h>

#include "audit_stream.h"

void
audit_stream_init(struct audit_stream *v, const struct audit_keys *keys,
    const json_t *jwks)
{
	memset(v, 0, sizeof(*v));
	v->keys = keys;
	v->jwks = jwks;
	snprintf(v->head.hash, sizeof(v->head.hash), "%s", AUDIT_GENESIS);
	v->start = v->head;
}

int
audit_stream_want(struct audit_stream *v, int64_t seq)
{
	if (v->nwant == AUDIT_STREAM_WANT)
		return (-1);
	memset(&v->want[v->nwant], 0, sizeof(v->want[0]));
	v->want[v->nwant++].seq = seq;
	return (0);
}

static int
stream_bad(struct audit_stream *v, int64_t seq, const char *why)
{
	v->r.bad_seq = seq;
	snprintf(v->r.why, sizeof(v->r.why), "%s", why);
	return (1);
}

/* The checkpoint of a start or checkpoint line into *cp: claims, and the
 * signature when there is a JWK Set.  NULL or why not. */
static const char *
stream_checkpoint(struct audit_stream *v, const json_t *tok,
    struct checkpoint *cp)
{
	const char	*why;

	if (!json_is_string(tok))
		return ("not a checkpoint token");
	if (v->jwks == NULL)
		return (checkpoint_parse(json_string_value(tok), cp, &why) ==
		    -1 ? why : NULL);
	if (checkpoint_verify_jwks(v->jwks, json_string_value(tok), cp,
	    &why) == -1)
		return (why);
	v->signatures++;
	return (NULL);
}

static void
stream_note(struct audit_stream *v)
{
	int	 i;

	for (i = 0; i < v->nwant; i++)
		if (v->want[i].seq == v->head.seq) {
			memcpy(v->want[i].hash, v->head.hash, 65);
			v->want[i].seen = 1;
		}
}

static int
stream_record(struct audit_stream *v, const json_t *rec)
{
	char		 hash[65];
	const char	*why;
	int		 tag_ok;

	why = audit_check_json(rec, v->head.hash, v->head.seq + 1, v->keys,
	    &v->format, &v->tagged, &tag_ok, hash);
	if (why != NULL)
		return (stream_bad(v, v->head.seq + 1, why));
	v->head.seq++;
	memcpy(v->head.hash, hash, sizeof(hash));
	v->r.count++;
	v->r.tagged += tag_ok;
	stream_note(v);
	return (0);
}

int
audit_stream_line(struct audit_stream *v, const json_t *line)
{
	struct checkpoint	 cp;
	const json_t		*tok;
	const char		*why;

	v->lines++;
	v->ends_checked = 0;
	if (!json_is_object(line))
		return (stream_bad(v, v->head.seq + 1, "a line is not a JSON "
		    "object"));
	if ((tok = json_object_get(line, "start")) != NULL) {
		if (v->lines != 1 || json_object_size(line) != 1)
			return (stream_bad(v, v->head.seq + 1, "a start line "
			    "may only come first, alone"));
		if ((why = stream_checkpoint(v, tok, &cp)) != NULL)
			return (stream_bad(v, 1, why));
		v->started = 1;
		v->head.seq = cp.seq;
		memcpy(v->head.hash, cp.hash, sizeof(cp.hash));
		v->start = v->head;
		stream_note(v);
		return (0);
	}
	if ((tok = json_object_get(line, "checkpoint")) != NULL) {
		if (json_object_size(line) != 1)
			return (stream_bad(v, v->head.seq, "a checkpoint line "
			    "holds only the checkpoint"));
		if ((why = stream_checkpoint(v, tok, &cp)) != NULL)
			return (stream_bad(v, v->head.seq, why));
		if (cp.seq != v->head.seq || strcmp(cp.hash, v->head.hash) != 0)
			return (stream_bad(v, v->head.seq, "the checkpoint "
			    "after this record names another record or "
			    "hash"));
		v->checkpoints++;
		v->ends_checked = 1;
		return (0);
	}
	return (stream_record(v, line));
}

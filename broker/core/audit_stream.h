/*
 * audit_stream: verifying the audit chain as JSON lines (proto/audit.md
 * "Streams, archives and cuts") — an export, GET /v1/audit's pages, an
 * archive made by a prune.  A stream holds, in order:
 *   {"start": CHECKPOINT}   at most once, first: the records that follow
 *                           continue after that checkpoint's record
 *                           (a chain kept after a cut, or an archive that
 *                           continues an earlier one); without it they
 *                           start at genesis;
 *   records                 {seq, at, actor, ..., prev_hash, hash};
 *   {"checkpoint": CHECKPOINT}  the record just before it has that seq
 *                           and hash (an archive ends with one).
 * Checkpoint signatures are checked when a JWK Set is given; tags when
 * audit keys are.  No I/O: the caller reads the lines.
 */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "audit.h"
#include "checkpoint.h"

#define AUDIT_STREAM_WANT	16	/* checkpoints looked for */

struct audit_stream {
	const struct audit_keys	*keys;	/* NULL: tags not checked */
	const json_t		*jwks;	/* NULL: signatures not checked */
	struct audit_head	 head;	/* the last record (or the start) */
	struct audit_head	 start;	/* where the records began */
	int			 started;	/* a start line was read */
	int			 lines;
	int			 format, tagged;
	struct audit_check	 r;	/* count, bad_seq, why, tagged */
	int			 checkpoints;	/* checkpoint lines that held */
	int			 ends_checked;	/* the last line was one */
	int			 signatures;	/* that verified */
	/* Records whose hash the caller wants (its --checkpoint files). */
	struct {
		int64_t		 seq;
		char		 hash[65];
		int		 seen;
	}			 want[AUDIT_STREAM_WANT];
	int			 nwant;
};

void	audit_stream_init(struct audit_stream *v, const struct audit_keys *keys,
	    const json_t *jwks);
/* Note the hash of record seq when it goes by.  0, or -1 (too many). */
int	audit_stream_want(struct audit_stream *v, int64_t seq);
/*
 * One line, parsed (borrowed).  0 good so far, 1 broken (v->r.bad_seq and
 * v->r.why say where and why; the line number is v->lines).
 */
int	audit_stream_line(struct audit_stream *v, const json_t *line);

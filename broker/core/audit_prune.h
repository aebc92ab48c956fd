/*
 * audit_prune: retention (CONTRACT §10, proto/audit.md "Streams, archives
 * and cuts") — where a prune may cut the chain, and the archive of what
 * it cuts: JSON lines that verify on their own (audit_stream.h), ending in
 * a signed checkpoint of the last archived record.  The cut keeps every
 * record something still relies on: those of intents still pending or
 * allowed and unredeemed, the newest policy.apply record, and the newest
 * record.  The database side of a prune (deleting, recording the cut) is
 * a lifecycle transition (lifecycle.h lc_prune).
 */
#pragma once

#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit.h"
#include "store.h"

/* Where a prune cuts. */
struct audit_prune_plan {
	struct audit_head	 start;		/* the chain kept starts after */
	char			*start_jws;	/* its checkpoint (a cut's), or
						 * NULL at genesis; owned */
	struct audit_head	 cut;		/* the last record archived */
	int64_t			 records;	/* archived: cut.seq - start */
	const char		*kept_by;	/* what stopped the cut earlier
						 * than `before`, or NULL */
};

/*
 * Plan a prune of the records before `before` (unix time): from the
 * chain's start (the cut, or genesis) to the last record older than
 * before that nothing still needs.  plan->records is 0 when there is
 * nothing to prune.  0, or -1 (a storage error, or the records do not
 * read).  Free with audit_prune_plan_clear.
 */
int	audit_prune_plan(struct store *s, int64_t before,
	    struct audit_prune_plan *plan);
void	audit_prune_plan_clear(struct audit_prune_plan *plan);

/*
 * Write the archive of plan's records to path, a new file (mode 0600;
 * an existing one is never overwritten): a start line when the chain
 * kept began at a cut, the records as exported, and a checkpoint of the
 * last one signed at now by key with header.  *jws gets that checkpoint
 * (malloc'd).  The file is complete and synced before this returns.  0,
 * or -1 with err.
 */
int	audit_archive_write(struct store *s, const struct audit_prune_plan *plan,
	    const char *path, EVP_PKEY *key, json_t *header, int64_t now,
	    char **jws, char *err, size_t errlen);

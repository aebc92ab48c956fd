/*
 * audit_trust_impl: what the files of the audit trust module share and
 * nobody else may use — the broker's anchor as read from its file.
 */
#pragma once

#include "audit_trust.h"

#define ANCHOR_MAX	1024	/* bytes of an anchor file */

/* The newest record a broker verified, as it wrote it down. */
struct trust_anchor {
	struct audit_head	 head;
	int			 tagged;	/* the chain had a tag by then */
	int64_t			 at;
};

/*
 * Read and check the anchor at path: 1 and *a, 0 when there is no file,
 * -1 when it does not verify (a break, recorded in t).
 */
int	trust_anchor_read(struct audit_trust *t, const char *path,
	    struct trust_anchor *a);

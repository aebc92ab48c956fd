/*
 * policy_versions: the stored policy versions as JSON — the history of
 * GET /v1/policy/history and toolgatectl --db policy history, one shape
 * for both.  Reads through the store; writes nothing (a version is made
 * only by lc_policy_apply).
 */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "store.h"

#define POLICY_HISTORY_LIMIT		100	/* default page */
#define POLICY_HISTORY_LIMIT_MAX	1000

/*
 * {"items": [{"version", "applied_at" (RFC 3339), "applied_by",
 * "sha256"}, ...], "next_before": N or null}: at most limit versions
 * older than before (0: from the newest), newest first; next_before is
 * what to pass as before for the next page, null after the oldest.  New
 * reference, or NULL on a storage error or ENOMEM.
 */
json_t	*policy_versions_json(struct store *s, int64_t before, int64_t limit);

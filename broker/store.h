/*
 * store: the rows behind decisions — policy versions, intents, replay
 * guards — and the JSON views of them the API answers with.  Runs inside
 * transactions opened by the caller unless a function says otherwise.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db.h"

/* Current policy version (0 when none) and, if body is not NULL, its text
 * (malloc'd).  0 or -1. */
int	store_policy_current(struct db *db, int64_t *version, char **body,
	    size_t *len);

/*
 * Store an already validated policy text as a new version and audit it
 * ("policy.apply" by actor), in its own transaction.  *version gets the new
 * number.  0 or -1.
 */
int	store_policy_apply(struct db *db, const char *text, size_t len,
	    const char *actor, int64_t *version);

/*
 * fuzz-audit: canonical JSON and the hash chain.  The input is parsed as
 * JSON the way the broker parses claims (duplicate keys refused); every
 * parsed value must be written by jsonw's legacy style exactly as
 * jansson's sorted json_dumps writes it (format 1 records are re-derived
 * with it).  An object then becomes the details of 1 to 3
 * records appended, each in its own BEGIN IMMEDIATE transaction, to an
 * in-memory database made by store_open (migrations and all).  Its "actor",
 * "event" and "intent_id" members, when strings, are used for those
 * fields.  Invariants (abort when broken): an append succeeds exactly when
 * the details have a canonical form nesting at most AUDIT_MAX_DEPTH;
 * audit_verify then finds the whole chain intact with the right count; and
 * audit_each gives every new record back with the same details (numbers
 * by value: "1e3" comes back as 1000), actor, event and intent_id.  The database starts afresh every FUZZ_AUDIT_RESET
 * inputs to bound memory and time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "audit.h"
#include "canon.h"
#include "store.h"
#include "store_sqlite.h"
#include "fuzz.h"
#include "jsonw-diff.h"
#include "log.h"

#define FUZZ_AUDIT_MAX		(64 * 1024)
#define FUZZ_AUDIT_RESET	128
#define FUZZ_AUDIT_NOW		1795736650

static struct store	*db;
static int64_t		 records;	/* appended since the reset */
static unsigned		 inputs;

struct expect {
	json_t		*details;
	const char	*actor, *event, *intent_id;
	int64_t		 seen;
};

static void
db_reset(void)
{
	char	 err[256];

	store_close(db);
	if ((db = store_open(":memory:", STORE_CREATE, err, sizeof(err))) == NULL)
		fuzz_fail(__FILE__, __LINE__, err);
	records = 0;
}

static int
each_cb(json_t *rec, void *arg)
{
	struct expect	*x = arg;
	const char	*id = json_string_value(json_object_get(rec,
			    "intent_id"));

	FUZZ_ASSERT(fuzz_json_same(json_object_get(rec, "details"),
	    x->details));
	FUZZ_ASSERT(strcmp(json_string_value(json_object_get(rec, "actor")),
	    x->actor) == 0);
	FUZZ_ASSERT(strcmp(json_string_value(json_object_get(rec, "event")),
	    x->event) == 0);
	FUZZ_ASSERT((id == NULL) == (x->intent_id == NULL));
	FUZZ_ASSERT(id == NULL || strcmp(id, x->intent_id) == 0);
	FUZZ_ASSERT(json_integer_value(json_object_get(rec, "seq")) ==
	    records - x->seen + 1);
	x->seen--;
	return (0);
}

static const char *
member(json_t *o, const char *key, const char *dflt)
{
	const char	*s = json_string_value(json_object_get(o, key));

	return (s != NULL ? s : dflt);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init(LOG_LVL_ERROR, "fuzz-audit");
	json_object_seed(1);
	db_reset();
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit_check	 chk;
	struct expect		 x;
	json_t			*details;
	char			*canon;
	int64_t			 before;
	int			 i, n, ok, has_canon;

	if (size > FUZZ_AUDIT_MAX)
		return (0);
	if (inputs++ % FUZZ_AUDIT_RESET == 0)
		db_reset();
	details = json_loadb((const char *)data, size,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	if (details == NULL)
		return (0);
	/* jsonw's legacy style is a faster json_dumps: a difference would
	 * break old chains. */
	FUZZ_ASSERT(jsonw_diff(details) == NULL);
	if (!json_is_object(details)) {
		json_decref(details);
		return (0);
	}
	canon = canon_dump(details);
	/* Stored only when it has a canonical form and reads back. */
	has_canon = canon != NULL &&
	    canon_depth(details, AUDIT_MAX_DEPTH + 1) <= AUDIT_MAX_DEPTH;
	free(canon);
	memset(&x, 0, sizeof(x));
	x.details = details;
	x.actor = member(details, "actor", "agent-a");
	x.event = member(details, "event", "decision");
	x.intent_id = member(details, "intent_id", NULL);

	before = records;
	n = 1 + (int)(size % 3);
	for (i = 0; i < n; i++) {
		FUZZ_ASSERT(store_begin(db) == 0);
		ok = audit_append(db, FUZZ_AUDIT_NOW + i, x.actor, x.event,
		    x.intent_id, details) == 0;
		FUZZ_ASSERT(ok == has_canon);
		if (ok) {
			FUZZ_ASSERT(store_commit(db) == 0);
			records++;
		} else
			store_rollback(db);
	}

	memset(&chk, 0, sizeof(chk));
	if (audit_verify(db, &chk) != 0 || chk.count != records)
		fuzz_fail(__FILE__, __LINE__, chk.why[0] ? chk.why :
		    "audit_verify failed or miscounted");
	x.seen = records - before;
	FUZZ_ASSERT(audit_each(db, before, 0, each_cb, &x) == 0);
	FUZZ_ASSERT(x.seen == 0);
	json_decref(details);
	return (0);
}

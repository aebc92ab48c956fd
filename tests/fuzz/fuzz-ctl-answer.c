/*
 * fuzz-ctl-answer: toolgatectl's reading of what a broker sends back —
 * the HTTP answer parser (status line, headers, Content-Length or chunked
 * body: client_parse_answer, the same code client_request runs after its
 * reads) and then the shared renderers of output.c on the JSON body
 * (error objects and problems, amounts, approvals, times, tables, pretty
 * and line JSON), with stdout sent to /dev/null.  Invariants
 * (abort when broken): a refused answer says why; an accepted one has a
 * status in 100..599 and a NUL-terminated body no longer than the input,
 * taken verbatim from the input unless it was chunked.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "fuzz.h"

#define FUZZ_ANSWER_MAX	(1024 * 1024)
#define FUZZ_NOW_CTL	1795736680

/* main.c is not linked (it has main); output.c's ctl_call, never called
 * here, is the only user. */
int
ctl_fail(const char *fmt, ...)
{
	return (CTL_FAIL);
}

/* 1 if "chunked" appears anywhere, in any case: then the body may differ
 * from the input bytes. */
static int
is_chunked(const uint8_t *data, size_t size)
{
	static const char	 te[] = "chunked";
	size_t			 i, k;

	for (i = 0; i + sizeof(te) - 1 <= size; i++) {
		for (k = 0; k < sizeof(te) - 1; k++)
			if ((data[i + k] | 0x20) != te[k])
				break;
		if (k == sizeof(te) - 1)
			return (1);
	}
	return (0);
}

/* What toolgatectl's commands do with an answer object. */
static void
render(json_t *j)
{
	static const char *const head[] = { "ID", "AGENT", "TOOL", "AMOUNT",
	    "APPROVALS", "AGE" };
	struct out_table	*t;
	const char		*cells[6];
	char			 amt[64], appr[64], age[32];
	json_t			*v;
	int64_t			 at;
	size_t			 i;

	/* Not out_fail/out_problems: stderr is libFuzzer's. */
	if (json_is_string(json_object_get(j, "error")))
		out_kv("error", "%s: %s", out_str(j, "error"),
		    out_str(j, "message"));
	out_json(j);
	out_json_line(j);
	out_kv("id", "%s", out_str(j, "id"));
	out_kv("status", "%s", out_str(j, "status"));
	out_amount(json_object_get(j, "amount"), amt, sizeof(amt));
	out_approvals(j, appr, sizeof(appr));
	if (out_time(j, "created_at", &at) == 0)
		out_duration(FUZZ_NOW_CTL - at, age, sizeof(age));
	if ((t = out_table_new(6, head)) == NULL)
		return;
	json_array_foreach(json_object_get(j, "intents"), i, v) {
		out_amount(json_object_get(v, "amount"), amt, sizeof(amt));
		out_approvals(v, appr, sizeof(appr));
		snprintf(age, sizeof(age), "-");
		if (out_time(v, "expires_at", &at) == 0)
			out_duration(at - FUZZ_NOW_CTL, age, sizeof(age));
		cells[0] = out_str(v, "id");
		cells[1] = json_string_value(json_object_get(v, "agent"));
		cells[2] = out_str(v, "tool");
		cells[3] = amt;
		cells[4] = appr;
		cells[5] = age;
		if (out_table_row(t, cells) == -1)
			break;
		if (i % 2)
			out_table_warn(t, i % 7);
	}
	out_table_print(t);
	out_table_free(t);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (freopen("/dev/null", "w", stdout) == NULL)
		return (-1);
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client_answer	 ans;
	char			 err[512];
	json_t			*j;

	if (size > FUZZ_ANSWER_MAX)
		return (0);
	err[0] = '\0';
	if (client_parse_answer((const char *)data, size, &ans, err,
	    sizeof(err)) == -1) {
		FUZZ_ASSERT(err[0] != '\0');
		FUZZ_ASSERT(ans.body == NULL);
		return (0);
	}
	FUZZ_ASSERT(ans.status >= 100 && ans.status <= 599);
	FUZZ_ASSERT(ans.body != NULL && ans.len <= size);
	FUZZ_ASSERT(ans.body[ans.len] == '\0');
	if (ans.len > 0 && !is_chunked(data, size))
		FUZZ_ASSERT(memmem(data, size, ans.body, ans.len) != NULL);
	j = json_loadb(ans.body, ans.len, JSON_REJECT_DUPLICATES, NULL);
	if (json_is_object(j))
		render(j);
	json_decref(j);
	client_answer_free(&ans);
	return (0);
}

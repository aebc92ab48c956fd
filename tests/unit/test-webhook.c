/*
 * test-webhook: broker/core/webhook.c — the JSON envelope's exact bytes,
 * Toolgate-Signature against an independently computed HMAC (Python's
 * hmac module), and Slack messages: every type renders, a pending
 * intent's message carries the facts and the commands, text from agents
 * cannot mention a channel or hide a link, and huge text stays inside
 * Slack's limits.
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "webhook.h"

static int	 passed;

#define CHECK(x) do { assert(x); passed++; } while (0)

#define T0	1795736400
#define ID	"in_0123456789abcdef0123456789abcdef"

static void
test_envelope_and_signature(void)
{
	static const char want[] = "{\"at\":\"2026-11-26T23:40:00Z\","
	    "\"data\":{\"x\":1},\"id\":\"ev_1\",\"type\":\"intent.pending\"}";
	json_t		*data = json_pack("{si}", "x", 1);
	char		*body, sig[WEBHOOK_SIG_MAX];
	size_t		 len;
	enum webhook_format f;

	body = webhook_body(WEBHOOK_JSON, "ev_1", "intent.pending", T0, data,
	    T0, &len);
	CHECK(body != NULL && len == strlen(want) && strcmp(body, want) == 0);
	/* hmac.new(b"secret-key", b"1795736400." + body, sha256) */
	CHECK(webhook_signature((const unsigned char *)"secret-key", 10, T0,
	    body, len, sig) == 0);
	CHECK(strcmp(sig, "t=1795736400,v1=5fdeb508d1ec431c0e8fb67195ebec58"
	    "66f9d6b597cdfd4b04f2613ae9e60316") == 0);
	/* Another key, another time: another signature. */
	CHECK(webhook_signature((const unsigned char *)"secret-kez", 10, T0,
	    body, len, sig) == 0 && strstr(sig, "5fdeb508") == NULL);
	free(body);
	json_decref(data);
	CHECK(webhook_format_parse("slack", &f) == 0 && f == WEBHOOK_SLACK);
	CHECK(webhook_format_parse("json", &f) == 0 && f == WEBHOOK_JSON);
	CHECK(webhook_format_parse("JSON", &f) == -1);
	CHECK(strcmp(webhook_format_name(WEBHOOK_SLACK), "slack") == 0);
}

/* The Slack message of type with data, parsed back; its whole text. */
static json_t *
slack(const char *type, json_t *data, char **all)
{
	json_t		*msg;
	char		*body;
	size_t		 len;

	body = webhook_body(WEBHOOK_SLACK, "ev_1", type, T0, data, T0 + 60,
	    &len);
	CHECK(body != NULL && len == strlen(body));
	msg = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
	CHECK(msg != NULL);
	CHECK(json_is_string(json_object_get(msg, "text")));
	CHECK(json_array_size(json_object_get(msg, "blocks")) >= 2);
	*all = body;
	return (msg);
}

/* Every section's text is within Slack's 3000 characters. */
static void
check_limits(const json_t *msg)
{
	const json_t	*b, *f;
	size_t		 i, j;

	json_array_foreach(json_object_get(msg, "blocks"), i, b) {
		const json_t *t = json_object_get(b, "text");

		if (t != NULL)
			CHECK(json_string_length(json_object_get(t, "text")) <=
			    3000);
		json_array_foreach(json_object_get(b, "fields"), j, f)
			CHECK(json_string_length(json_object_get(f, "text")) <=
			    2000);
	}
}

static void
test_slack_pending(void)
{
	json_t	*data, *msg;
	char	*all, big[8000];

	data = json_pack("{ss ss ss s{ss ss} ss s{ss} si s[s] ss}",
	    "id", ID, "agent", "agent-payments", "tool", "payments.transfer",
	    "amount", "value", "5000.00", "currency", "USD",
	    "reason", "<!channel> pay <https://evil.example|the invoice> & go",
	    "args", "to", "acct-7", "approvals_required", 1,
	    "approver_roles", "finance-approver",
	    "expires_at", "2026-11-27T00:40:00Z");
	msg = slack("intent.pending", data, &all);
	/* the facts */
	CHECK(strstr(all, "agent-payments") != NULL);
	CHECK(strstr(all, "payments.transfer") != NULL);
	CHECK(strstr(all, "5000.00 USD") != NULL);
	CHECK(strstr(all, "0/1") != NULL);
	CHECK(strstr(all, "59m") != NULL);	/* 3600 - 60 s left */
	CHECK(strstr(all, "finance-approver") != NULL);
	CHECK(strstr(all, "acct-7") != NULL);
	CHECK(strstr(all, "toolgatectl show " ID) != NULL);
	CHECK(strstr(all, "toolgatectl approve " ID) != NULL);
	CHECK(strstr(json_string_value(json_object_get(msg, "text")),
	    "Approval needed: agent-payments asks to run payments.transfer") !=
	    NULL);
	/* an agent's text cannot mention or link */
	CHECK(strstr(all, "<!channel>") == NULL);
	CHECK(strstr(all, "<https://") == NULL);
	CHECK(strstr(all, "&lt;!channel&gt;") != NULL);
	CHECK(strstr(all, "&amp; go") != NULL);
	check_limits(msg);
	json_decref(msg);
	free(all);

	/* Huge text is cut; an id of the wrong shape gets no commands. */
	memset(big, '<', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_object_set_new(data, "reason", json_string(big));
	json_object_set_new(data, "args", json_pack("{ss}", "memo", big));
	json_object_set_new(data, "agent", json_string(big));
	json_object_set_new(data, "id", json_string("in_x; rm -rf /"));
	msg = slack("intent.pending", data, &all);
	check_limits(msg);
	CHECK(strstr(all, "toolgatectl approve") == NULL);
	CHECK(strstr(all, "rm -rf") == NULL);
	json_decref(msg);
	free(all);
	json_decref(data);
}

static void
test_slack_types(void)
{
	static const struct {
		const char	*type;
		const char	*data;
		const char	*has;
	} cases[] = {
		{ "intent.allowed", "{\"id\":\"" ID "\",\"agent\":\"a\","
		    "\"tool\":\"t.x\",\"amount\":null,\"by\":\"alice\","
		    "\"approvals\":[{\"by\":\"alice\"}],"
		    "\"approvals_required\":1}", "by alice, 1/1 approvals" },
		{ "intent.rejected", "{\"id\":\"" ID "\",\"agent\":\"a\","
		    "\"tool\":\"t.x\",\"by\":\"bob\",\"reason\":\"no <b>\"}",
		    "by bob: no &lt;b&gt;" },
		{ "intent.expired", "{\"id\":\"" ID "\",\"agent\":\"a\","
		    "\"tool\":\"t.x\",\"approvals\":[],"
		    "\"approvals_required\":2}", "0/2 approvals" },
		{ "killswitch.tripped", "{\"id\":7,\"scope\":\"tool\","
		    "\"target\":\"payments.*\",\"reason\":\"runaway\","
		    "\"by\":\"olga\",\"rejected\":3}",
		    "toolgatectl killswitch reset 7" },
		{ "killswitch.reset", "{\"id\":7,\"reason\":\"fixed\","
		    "\"by\":\"olga\"}", "Kill switch 7 reset" },
		{ "policy.applied", "{\"version\":4,\"sha256\":\"abc\","
		    "\"by\":\"olga\"}", "Policy version 4 applied" },
		{ "audit.record", "{\"seq\":12,\"event\":\"decision\","
		    "\"actor\":\"a\",\"intent_id\":\"" ID "\"}",
		    "Audit record 12" },
		{ "audit.checkpoint", "{\"seq\":12,\"hash\":\"ab12\"}",
		    "record 12, hash `ab12`" },
		{ "some.future", "{}", "some.future" },
	};
	json_t	*data, *msg;
	char	*all;
	size_t	 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK((data = json_loads(cases[i].data, 0, NULL)) != NULL);
		msg = slack(cases[i].type, data, &all);
		if (strstr(all, cases[i].has) == NULL)
			fprintf(stderr, "%s: no \"%s\" in %s\n",
			    cases[i].type, cases[i].has, all);
		CHECK(strstr(all, cases[i].has) != NULL);
		/* the plain text has no mrkdwn stars */
		CHECK(strchr(json_string_value(json_object_get(msg, "text")),
		    '*') == NULL);
		check_limits(msg);
		json_decref(msg);
		json_decref(data);
		free(all);
	}
}

int
main(void)
{
	test_envelope_and_signature();
	test_slack_pending();
	test_slack_types();
	printf("test-webhook: %d checks passed\n", passed);
	return (0);
}

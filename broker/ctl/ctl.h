/*
 * ctl: what the toolgatectl files share — the global options, the command
 * table types (relayctl style: static tables, one file per command group),
 * the HTTPS client, the output helpers and the exit codes of CONTRACT §7.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lifecycle.h"
#include "store.h"

/* Exit codes (CONTRACT §7). */
#define CTL_OK		0	/* done */
#define CTL_FAIL	1	/* refused or failed */
#define CTL_USAGE	2	/* bad command line */
#define CTL_CONN	3	/* connection or TLS failure */
#define CTL_PENDING	4	/* the intent is still pending (CONTRACT §12) */

#define CTL_DEFAULT_URL		"https://127.0.0.1:8443"
#define CTL_TIMEOUT		30	/* seconds, socket reads and writes */
#define CTL_MAX_OPTS		16	/* options per command */
#define CTL_MAX_COLS		16	/* columns of a table */

/* Global options, from the command line or the environment. */
struct ctl {
	const char	*url;
	const char	*cert;
	const char	*key;
	const char	*ca;
	const char	*db;
	int		 db_from_env;	/* db is TOOLGATE_DB, not --db */
	const char	*audit_key;	/* --audit-key (TOOLGATE_AUDIT_KEY) */
	int		 json;
	int		 timeout;	/* seconds */
};

/* One option of a command: --name ARG (arg NULL for a flag), and -c
 * when shortopt is not '\0'. */
struct ctl_opt {
	const char	*name;
	const char	*arg;
	const char	*help;
	char		 shortopt;
};

/* A parsed command line: option values indexed like the command's opts
 * (a flag that was given reads ""), then the positional arguments. */
struct ctl_args {
	const char	*val[CTL_MAX_OPTS];
	char		**pos;
	int		 npos;
	/* Every option as given, in order, for repeatable ones. */
	int		*occ_opt;
	const char	**occ_val;
	int		 nocc;
};

/* What an offline change is tagged with: --audit-key (main.c). */
struct ctl_trust {
	struct audit_keys	 keys;
	struct audit_trust	 trust;
	struct lc_config	 cfg;	/* for decider_init */
};

struct ctl_cmd;
typedef int (*ctl_run)(struct ctl *, const struct ctl_cmd *,
    struct ctl_args *);

/*
 * A command, or a group when sub is not NULL.  path is the full command
 * ("policy apply") for help and errors; npos the exact number of positional
 * arguments the command takes.  Tables end with a NULL name.
 */
struct ctl_cmd {
	const char		*name;
	const char		*path;
	const char		*synopsis;	/* after the path: "FILE" */
	const char		*summary;
	const char		*example;
	const struct ctl_opt	*opts;		/* NULL-name terminated */
	int			 npos;
	ctl_run			 run;
	const struct ctl_cmd	*sub;
};

/* main.c */
int	ctl_usage(const struct ctl_cmd *cmd, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int	ctl_need_identity(const struct ctl *, const struct ctl_cmd *);
int	ctl_online(const struct ctl *, const struct ctl_cmd *);
int	ctl_intent_id_ok(const char *id);
int	ctl_check_intent_id(const struct ctl_cmd *, const char *id);
int	ctl_parse_int(const struct ctl_cmd *, const char *what, const char *v,
	    int64_t min, int64_t max, int64_t *out);
void	ctl_actor(char *out, size_t outlen);
int	ctl_store_open(const struct ctl *, int create, struct store **sp);
int	ctl_decider_init(struct decider *d, struct store *s,
	    struct ctl_trust *t);
/* --db as messages may show it: a URI without its password. */
const char	*ctl_db_name(const struct ctl *ctl);
int	ctl_cert_identity(const struct ctl *, char *out, size_t outlen);
int	ctl_read_file(const char *path, size_t max, char **text, size_t *len);
int	ctl_trust_open(const struct ctl *, const struct ctl_cmd *, int widens,
	    struct ctl_trust *t);
void	ctl_trust_close(struct ctl_trust *t);
int	ctl_args_all(const struct ctl_args *a, int opt, const char **out,
	    int max);

/* help.c */
int	ctl_help(const struct ctl_cmd *cmd, const struct ctl_opt *global_opts,
	    int root);

/* client.c */
struct client_answer {
	int	 status;
	char	*body;		/* NUL-terminated; malloc'd */
	size_t	 len;
	char	*head;		/* status line and headers; malloc'd */
};
int	client_request(const struct ctl *, const char *method,
	    const char *path, const char *ctype, const char *body, size_t len,
	    struct client_answer *ans, char *err, size_t errlen);
/* The same with extra request headers ("Name: value\r\n" lines, which
 * replace the default "Accept: application/json"). */
int	client_request_headers(const struct ctl *, const char *method,
	    const char *path, const char *ctype, const char *headers,
	    const char *body, size_t len, struct client_answer *ans,
	    char *err, size_t errlen);
/* Each chunk of a chunked answer's body as it arrives (ans holds the
 * status and head by then). */
typedef void (*client_stream_fn)(const struct client_answer *ans,
	    const char *data, size_t len, void *arg);
/* The same, handing a chunked body to stream as it comes instead of to
 * ans->body (then empty): answers that are streams (SSE). */
int	client_request_stream(const struct ctl *, const char *method,
	    const char *path, const char *ctype, const char *headers,
	    const char *body, size_t len, client_stream_fn stream, void *arg,
	    struct client_answer *ans, char *err, size_t errlen);
void	client_answer_free(struct client_answer *ans);
/* The value of header name in the answer (into out), or NULL. */
const char *client_answer_header(const struct client_answer *ans,
	    const char *name, char *out, size_t outlen);
int	client_parse_answer(const char *data, size_t len,
	    struct client_answer *ans, char *err, size_t errlen);

/* output.c */
int	ctl_call(const struct ctl *, const char *method, const char *path,
	    const char *ctype, const char *body, size_t len, int *status,
	    json_t **answer);
void	out_json(const json_t *v);
void	out_kv(const char *key, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	out_problems(const json_t *problems);
/* {"path", "message"} warnings as "warning: PATH: MESSAGE" lines. */
void	out_warnings(const json_t *warnings);
int	out_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *out_str(const json_t *obj, const char *key);
void	out_json_line(const json_t *v);
struct out_table;
struct out_table *out_table_new(size_t ncols, const char *const head[]);
int	out_table_row(struct out_table *, const char *const cells[]);
void	out_table_warn(struct out_table *, size_t col);
void	out_table_print(const struct out_table *);
void	out_table_free(struct out_table *);
/* Fill cells[0..ncols) for one element (strings valid until the next
 * call; scratch is the row's buffer for numbers). */
typedef void (*out_row_fn)(const json_t *item, const char **cells,
    char *scratch, size_t scratchlen);
/* The aligned table head + one row per element of items, on stdout.
 * CTL_OK, or CTL_FAIL (printed) when out of memory. */
int	out_table_json(size_t ncols, const char *const head[],
	    const json_t *items, out_row_fn row);
void	out_duration(int64_t secs, char *buf, size_t len);
int	out_time(const json_t *obj, const char *key, int64_t *t);
void	out_amount(const json_t *amount, char *buf, size_t len);
void	out_approvals(const json_t *view, char *buf, size_t len);

/* cmd_policy.c: read and validate a policy file (problems printed);
 * CTL_OK with *text, *len and *warnings (printed), else the exit code. */
int	ctl_policy_load(const struct ctl *, const char *path, char **text,
	    size_t *len, json_t **warnings);

/* Command groups. */
extern const struct ctl_cmd cmd_policy[];
extern const struct ctl_cmd cmd_audit[];
/* cmd_checkpoint.c: audit checkpoint, audit prune */
extern const struct ctl_opt cmd_checkpoint_opts[];
extern const struct ctl_opt cmd_prune_opts[];
int	cmd_audit_checkpoint(struct ctl *, const struct ctl_cmd *,
	    struct ctl_args *);
int	cmd_audit_prune(struct ctl *, const struct ctl_cmd *,
	    struct ctl_args *);
extern const struct ctl_cmd cmd_killswitch[];
extern const struct ctl_cmd cmd_events[];
int	ctl_parse_args(const struct ctl_cmd *, const char *v, json_t **args);
extern const struct ctl_cmd cmd_mcp[];
extern const struct ctl_opt cmd_submit_opts[];
extern const struct ctl_opt cmd_wait_opts[];
int	cmd_submit(struct ctl *, const struct ctl_cmd *, struct ctl_args *);
int	cmd_wait(struct ctl *, const struct ctl_cmd *, struct ctl_args *);

/* cmd_approvals.c */
extern const struct ctl_opt cmd_pending_opts[];
extern const struct ctl_opt cmd_approve_opts[];
extern const struct ctl_opt cmd_reject_opts[];
int	cmd_pending(struct ctl *, const struct ctl_cmd *, struct ctl_args *);
int	ctl_get_intent(const struct ctl *, const struct ctl_cmd *,
	    const char *id, json_t **view);
int	cmd_show(struct ctl *, const struct ctl_cmd *, struct ctl_args *);
int	cmd_approve(struct ctl *, const struct ctl_cmd *, struct ctl_args *);
int	cmd_reject(struct ctl *, const struct ctl_cmd *, struct ctl_args *);
/* The "rule" of an intent view or explain answer as one "rule" line. */
void	show_rule(const json_t *rule);

/* cmd_limits.c */
extern const struct ctl_opt cmd_limits_opts[];
extern const struct ctl_opt cmd_explain_opts[];
int	cmd_limits(struct ctl *, const struct ctl_cmd *, struct ctl_args *);
int	cmd_policy_explain(struct ctl *, const struct ctl_cmd *,
	    struct ctl_args *);
/* The "limit" of an intent view or explain answer as one line (nothing
 * when it is absent or null). */
void	show_limit(const json_t *limit);

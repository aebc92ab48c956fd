/*
 * ctl: what the toolgatectl files share — the global options, the command
 * table types (relayctl style: static tables, one file per command group),
 * the HTTPS client, the output helpers and the exit codes of CONTRACT §7.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db.h"

/* Exit codes (CONTRACT §7). */
#define CTL_OK		0	/* done */
#define CTL_FAIL	1	/* refused or failed */
#define CTL_USAGE	2	/* bad command line */
#define CTL_CONN	3	/* connection or TLS failure */

#define CTL_DEFAULT_URL		"https://127.0.0.1:8443"
#define CTL_TIMEOUT		30	/* seconds, socket reads and writes */
#define CTL_MAX_OPTS		16	/* options per command */

/* Global options, from the command line or the environment. */
struct ctl {
	const char	*url;
	const char	*cert;
	const char	*key;
	const char	*ca;
	const char	*db;
	int		 json;
	int		 timeout;	/* seconds */
};

/* One option of a command: --name ARG (arg NULL for a flag). */
struct ctl_opt {
	const char	*name;
	const char	*arg;
	const char	*help;
};

/* A parsed command line: option values indexed like the command's opts
 * (a flag that was given reads ""), then the positional arguments. */
struct ctl_args {
	const char	*val[CTL_MAX_OPTS];
	char		**pos;
	int		 npos;
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
struct db *ctl_db_open(const struct ctl *, int create);
int	ctl_read_file(const char *path, size_t max, char **text, size_t *len);
int	ctl_not_implemented(struct ctl *, const struct ctl_cmd *,
	    struct ctl_args *);

/* client.c */
struct client_answer {
	int	 status;
	char	*body;		/* NUL-terminated; malloc'd */
	size_t	 len;
};
int	client_request(const struct ctl *, const char *method,
	    const char *path, const char *ctype, const char *body, size_t len,
	    struct client_answer *ans, char *err, size_t errlen);
void	client_answer_free(struct client_answer *ans);

/* output.c */
int	ctl_call(const struct ctl *, const char *method, const char *path,
	    const char *ctype, const char *body, size_t len, int *status,
	    json_t **answer);
void	out_json(const json_t *v);
void	out_kv(const char *key, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	out_problems(const json_t *problems);
int	out_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *out_str(const json_t *obj, const char *key);

/* Command groups. */
extern const struct ctl_cmd cmd_policy[];
extern const struct ctl_cmd cmd_audit[];
extern const struct ctl_opt cmd_submit_opts[];
int	cmd_submit(struct ctl *, const struct ctl_cmd *, struct ctl_args *);

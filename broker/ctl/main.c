/*
 * toolgatectl main: the command tables, the one parser for global and
 * per-command options (relayctl style), help generated from those same
 * tables, and small helpers every command shares (usage errors, opening
 * the database offline, reading a file).  It never talks to the network
 * itself (client.c) and never formats answers (output.c).
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "log.h"

#define CTL_VERSION	"0.1.0"	/* keep in step with meson.build */

static const struct ctl_opt global_opts[] = {
	{ "url", "URL", "broker URL (TOOLGATE_URL; default "
	    CTL_DEFAULT_URL ")" },
	{ "cert", "FILE", "client certificate, PEM (TOOLGATE_CERT)" },
	{ "key", "FILE", "client private key, PEM (TOOLGATE_KEY)" },
	{ "ca", "FILE", "CA that signed the broker's certificate "
	    "(TOOLGATE_CA)" },
	{ "db", "PATH", "work offline on this database" },
	{ "json", NULL, "machine output: JSON on stdout" },
	{ "version", NULL, "print the version and exit" },
	{ NULL, NULL, NULL }
};
enum { G_URL, G_CERT, G_KEY, G_CA, G_DB, G_JSON, G_VERSION };

static const struct ctl_opt opts_none[] = { { NULL, NULL, NULL } };

static const struct ctl_cmd cmd_main[] = {
	{ "submit", "submit", "--tool T [options]",
	    "sign an intent with --key and send it to the broker",
	    "toolgatectl submit --tool payments.transfer --amount 12.50 "
	    "--currency USD --args '{\"to\":\"acct-1\"}'",
	    cmd_submit_opts, 0, cmd_submit, NULL },
	{ "pending", "pending", "[--status S] [--limit N]",
	    "list intents waiting for approval (or decided ones)",
	    "toolgatectl pending --limit 20",
	    cmd_pending_opts, 0, cmd_pending, NULL },
	{ "show", "show", "ID", "show everything an approver needs about one "
	    "intent", "toolgatectl show in_0123456789abcdef0123456789abcdef",
	    opts_none, 1, cmd_show, NULL },
	{ "approve", "approve", "ID [--comment TEXT]",
	    "approve a pending intent",
	    "toolgatectl approve in_0123456789abcdef0123456789abcdef "
	    "--comment 'invoice 42'",
	    cmd_approve_opts, 1, cmd_approve, NULL },
	{ "reject", "reject", "ID --reason TEXT", "reject a pending intent",
	    "toolgatectl reject in_0123456789abcdef0123456789abcdef "
	    "--reason 'unknown payee'",
	    cmd_reject_opts, 1, cmd_reject, NULL },
	{ "killswitch", "killswitch", "COMMAND", "emergency stop",
	    "toolgatectl killswitch status",
	    opts_none, 0, NULL, cmd_killswitch },
	{ "policy", "policy", "COMMAND", "check, apply or show the policy",
	    "toolgatectl policy check policies/example.json",
	    opts_none, 0, NULL, cmd_policy },
	{ "audit", "audit", "COMMAND", "verify or export the audit chain",
	    "toolgatectl --db toolgate.db audit verify",
	    opts_none, 0, NULL, cmd_audit },
	{ "mcp", "mcp", "COMMAND", "reach the broker's MCP gateway",
	    "toolgatectl mcp stdio",
	    opts_none, 0, NULL, cmd_mcp },
	{ NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL }
};

static const struct ctl_cmd cmd_root = {
	"toolgatectl", "", "COMMAND [ARGS]",
	"the toolgate CLI for agents, approvers, operators and offline admin",
	"toolgatectl --cert me.pem --key me.key --ca ca.pem submit "
	"--tool crm.lookup",
	opts_none, 0, NULL, cmd_main
};

static int	help_width(const struct ctl_cmd *, const struct ctl_opt *);
static int	help(const struct ctl_cmd *cmd);

int
ctl_usage(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list	 ap;

	fputs("toolgatectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'toolgatectl%s%s --help'.\n",
	    cmd->path[0] != '\0' ? " " : "", cmd->path);
	return (CTL_USAGE);
}

int
ctl_fail(const char *fmt, ...)
{
	va_list	 ap;

	fputs("toolgatectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return (CTL_FAIL);
}


/* Online commands need all three files: usage error naming what is
 * missing, else 0. */
int
ctl_need_identity(const struct ctl *ctl, const struct ctl_cmd *cmd)
{
	if (ctl->cert == NULL)
		return (ctl_usage(cmd, "--cert (or TOOLGATE_CERT) is needed"));
	if (ctl->key == NULL)
		return (ctl_usage(cmd, "--key (or TOOLGATE_KEY) is needed"));
	if (ctl->ca == NULL)
		return (ctl_usage(cmd, "--ca (or TOOLGATE_CA) is needed"));
	return (0);
}

/* Commands that only exist online (the broker decides): a usage error
 * for --db or a missing identity file, else 0. */
int
ctl_online(const struct ctl *ctl, const struct ctl_cmd *cmd)
{
	if (ctl->db != NULL)
		return (ctl_usage(cmd, "%s works only through the broker "
		    "(drop --db)", cmd->path));
	return (ctl_need_identity(ctl, cmd));
}

/* An intent id as the broker makes them, "in_" and 32 lowercase hex
 * digits: checked before it goes into a URL path.  ok: 1 or 0; check: 0
 * or a usage error. */
int
ctl_intent_id_ok(const char *id)
{
	return (strncmp(id, "in_", 3) == 0 && strlen(id) == 35 &&
	    strspn(id + 3, "0123456789abcdef") == 32);
}

int
ctl_check_intent_id(const struct ctl_cmd *cmd, const char *id)
{
	if (!ctl_intent_id_ok(id))
		return (ctl_usage(cmd, "bad intent id '%s' (want in_ and 32 "
		    "lowercase hex digits)", id));
	return (0);
}

/* Decimal integer v in min..max into *out; usage error naming what
 * ("--limit", "ID") or 0 (v NULL leaves *out alone). */
int
ctl_parse_int(const struct ctl_cmd *cmd, const char *what, const char *v,
    int64_t min, int64_t max, int64_t *out)
{
	char		*end;
	long long	 n;

	if (v == NULL)
		return (0);
	errno = 0;
	n = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno != 0 || n < min || n > max)
		return (ctl_usage(cmd, "%s must be %lld..%lld", what,
		    (long long)min, (long long)max));
	*out = n;
	return (0);
}

/* "cli:" and the login name: the actor of offline changes. */
void
ctl_actor(char *out, size_t outlen)
{
	struct passwd	*pw = getpwuid(getuid());
	const char	*user = getenv("USER");

	if (pw != NULL && pw->pw_name != NULL)
		user = pw->pw_name;
	if (user != NULL && *user != '\0')
		snprintf(out, outlen, "cli:%s", user);
	else
		snprintf(out, outlen, "cli:uid%u", (unsigned)getuid());
}

/*
 * Open --db (migrating it).  Unless create is set the file must exist, so
 * a typo does not silently make an empty database.  Prints why on failure.
 */
struct db *
ctl_db_open(const struct ctl *ctl, int create)
{
	struct db	*db;
	char		 err[256];

	if (!create && access(ctl->db, F_OK) == -1) {
		ctl_fail("%s: %s", ctl->db, strerror(errno));
		return (NULL);
	}
	if ((db = db_open(ctl->db, err, sizeof(err))) == NULL)
		ctl_fail("%s: %s", ctl->db, err);
	return (db);
}

/* Read a whole file ("-" = stdin) of at most max bytes into a malloc'd,
 * NUL-terminated buffer.  Prints why on failure: 0 or -1. */
int
ctl_read_file(const char *path, size_t max, char **text, size_t *len)
{
	FILE	*f = stdin;
	char	*buf;
	size_t	 n;

	if (strcmp(path, "-") != 0 && (f = fopen(path, "rb")) == NULL) {
		ctl_fail("%s: %s", path, strerror(errno));
		return (-1);
	}
	if ((buf = malloc(max + 1)) == NULL) {
		ctl_fail("out of memory");
		n = 0;
		goto done;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		ctl_fail("%s: %s", path, ferror(f) ? "read error" :
		    "file too large");
		free(buf);
		buf = NULL;
	} else
		buf[n] = '\0';
 done:
	if (f != stdin)
		fclose(f);
	*text = buf;
	*len = n;
	return (buf == NULL ? -1 : 0);
}

/* An environment variable, with empty meaning unset. */
static const char *
env(const char *name)
{
	const char	*v = getenv(name);

	return (v != NULL && *v != '\0' ? v : NULL);
}

static void
ctl_init(struct ctl *ctl)
{
	memset(ctl, 0, sizeof(*ctl));
	if ((ctl->url = env("TOOLGATE_URL")) == NULL)
		ctl->url = CTL_DEFAULT_URL;
	ctl->cert = env("TOOLGATE_CERT");
	ctl->key = env("TOOLGATE_KEY");
	ctl->ca = env("TOOLGATE_CA");
	ctl->timeout = CTL_TIMEOUT;
}

static void
global_set(struct ctl *ctl, int idx, const char *val)
{
	switch (idx) {
	case G_URL:	ctl->url = val; break;
	case G_CERT:	ctl->cert = val; break;
	case G_KEY:	ctl->key = val; break;
	case G_CA:	ctl->ca = val; break;
	case G_DB:	ctl->db = val; break;
	case G_JSON:	ctl->json = 1; break;
	default:	break;
	}
}

/*
 * Match argv[*i] ("--name", "--name=value" or "--name value") against opts.
 * Returns the option's index with *val set ("" for a flag), -1 when opts
 * has no such option, -2 on a usage error (already printed; *rc set).
 */
static int
opt_match(const struct ctl_cmd *cmd, const struct ctl_opt *opts, int argc,
    char **argv, int *i, const char **val, int *rc)
{
	const char	*name = argv[*i] + 2, *eq = strchr(name, '=');
	size_t		 nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
	int		 k;

	for (k = 0; k < CTL_MAX_OPTS && opts[k].name != NULL; k++)
		if (strlen(opts[k].name) == nlen &&
		    strncmp(opts[k].name, name, nlen) == 0)
			break;
	if (k == CTL_MAX_OPTS || opts[k].name == NULL)
		return (-1);
	if (opts[k].arg == NULL) {
		*val = "";
		if (eq == NULL)
			return (k);
		*rc = ctl_usage(cmd, "--%s takes no value", opts[k].name);
		return (-2);
	}
	if (eq != NULL)
		*val = eq + 1;
	else if (*i + 1 < argc)
		*val = argv[++*i];
	else {
		*rc = ctl_usage(cmd, "--%s needs %s", opts[k].name,
		    opts[k].arg);
		return (-2);
	}
	return (k);
}

/* The valid choices of a group and the help hint, on stderr. */
static void
sub_list(const struct ctl_cmd *group)
{
	const struct ctl_cmd	*c;

	fputs("valid commands:", stderr);
	for (c = group->sub; c->name != NULL; c++)
		fprintf(stderr, " %s", c->name);
	fprintf(stderr, "\nTry 'toolgatectl%s%s --help'.\n",
	    group->path[0] ? " " : "", group->path);
}

/* The sub-command of group called name, or NULL after saying which names
 * exist. */
static const struct ctl_cmd *
find_sub(const struct ctl_cmd *group, const char *name)
{
	const struct ctl_cmd	*c;

	for (c = group->sub; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return (c);
	fprintf(stderr, "toolgatectl: unknown command: %s%s%s\n",
	    group->path, group->path[0] ? " " : "", name);
	sub_list(group);
	return (NULL);
}

/*
 * One option at argv[*i]: the command's own first, then the global ones
 * (accepted anywhere).  Returns -1 to go on, else an exit code (help,
 * version or a usage error).
 */
static int
parse_option(struct ctl *ctl, const struct ctl_cmd *cmd, struct ctl_args *a,
    int argc, char **argv, int *i)
{
	const char	*arg = argv[*i], *val;
	int		 k, rc = CTL_USAGE;

	if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
		return (help(cmd));
	if (strncmp(arg, "--", 2) != 0)
		return (ctl_usage(cmd, "unknown option: %s", arg));
	if ((k = opt_match(cmd, cmd->opts, argc, argv, i, &val, &rc)) >= 0) {
		a->val[k] = val;
		return (-1);
	}
	if (k == -2)
		return (rc);
	k = opt_match(cmd, global_opts, argc, argv, i, &val, &rc);
	if (k == -2)
		return (rc);
	if (k == -1)
		return (ctl_usage(cmd, "unknown option: %s", arg));
	if (k == G_VERSION) {
		printf("toolgatectl %s\n", CTL_VERSION);
		return (CTL_OK);
	}
	global_set(ctl, k, val);
	return (-1);
}

/* Walk argv: global options, the command path, its options and
 * positional arguments, then run it. */
static int
dispatch(struct ctl *ctl, int argc, char **argv, struct ctl_args *a)
{
	const struct ctl_cmd	*cmd = &cmd_root;
	int			 i, rc, dashdash = 0;

	for (i = 1; i < argc; i++) {
		if (!dashdash && strcmp(argv[i], "--") == 0) {
			dashdash = 1;
			continue;
		}
		if (!dashdash && argv[i][0] == '-' && argv[i][1] != '\0') {
			if ((rc = parse_option(ctl, cmd, a, argc, argv,
			    &i)) != -1)
				return (rc);
		} else if (cmd->sub != NULL) {
			if ((cmd = find_sub(cmd, argv[i])) == NULL)
				return (CTL_USAGE);
		} else
			a->pos[a->npos++] = argv[i];
	}
	if (cmd->sub != NULL) {
		fprintf(stderr, "toolgatectl: %s%sa command is needed\n",
		    cmd->path, cmd->path[0] ? ": " : "");
		sub_list(cmd);
		return (CTL_USAGE);
	}
	if (a->npos > cmd->npos)
		return (ctl_usage(cmd, "unexpected argument: %s",
		    a->pos[cmd->npos]));
	if (a->npos < cmd->npos)
		return (ctl_usage(cmd, "missing argument: %s %s", cmd->path,
		    cmd->synopsis));
	return (cmd->run(ctl, cmd, a));
}

/* Width of the left column: the longest entry plus a gap, at most 32. */
static int
help_width(const struct ctl_cmd *cmd, const struct ctl_opt *opts)
{
	const struct ctl_cmd	*c;
	int			 k, n, w = (int)strlen("-h, --help");

	for (k = 0; opts[k].name != NULL; k++) {
		n = 3 + (int)strlen(opts[k].name) +
		    (opts[k].arg ? (int)strlen(opts[k].arg) : 0);
		w = n > w ? n : w;
	}
	for (c = cmd->sub; c != NULL && c->name != NULL; c++) {
		n = 1 + (int)strlen(c->name) + (int)strlen(c->sub ? "COMMAND" :
		    c->synopsis);
		w = n > w ? n : w;
	}
	return (w > 32 ? 32 : w);
}

/* One aligned row; a left part wider than w gets a line of its own. */
static void
help_row(int w, const char *left, const char *text)
{
	if ((int)strlen(left) > w)
		printf("  %s\n  %-*s  %s\n", left, w, "", text);
	else
		printf("  %-*s  %s\n", w, left, text);
}

static void
help_opts(const char *title, const struct ctl_opt *opts, int w)
{
	char	 left[64];
	int	 k;

	printf("\n%s:\n", title);
	for (k = 0; opts[k].name != NULL; k++) {
		snprintf(left, sizeof(left), "--%s%s%s", opts[k].name,
		    opts[k].arg ? " " : "", opts[k].arg ? opts[k].arg : "");
		help_row(w, left, opts[k].help);
	}
	help_row(w, "-h, --help", "show this help");
}

/* Usage of cmd on stdout, from the tables; exit 0. */
static int
help(const struct ctl_cmd *cmd)
{
	const struct ctl_cmd	*c;
	const struct ctl_opt	*opts;
	char			 left[64];
	int			 root = cmd == &cmd_root, w;

	opts = root ? global_opts : cmd->opts;
	w = help_width(cmd, opts);
	printf("usage: toolgatectl [global options]%s%s %s\n\n%s\n",
	    cmd->path[0] ? " " : "", cmd->path, cmd->synopsis, cmd->summary);
	if (cmd->sub != NULL) {
		printf("\ncommands:\n");
		for (c = cmd->sub; c->name != NULL; c++) {
			snprintf(left, sizeof(left), "%s %s", c->name,
			    c->sub != NULL ? "COMMAND" : c->synopsis);
			help_row(w, left, c->summary);
		}
	}
	help_opts(root ? "global options" : "options", opts, w);
	if (!root)
		printf("\nglobal options (--url --cert --key --ca --db --json) "
		    "may come anywhere: see 'toolgatectl --help'\n");
	printf("\nexample:\n  %s\n", cmd->example);
	if (root)
		printf("\nexit codes: 0 done, 1 refused or failed, 2 usage, "
		    "3 connection or TLS failure\n");
	return (CTL_OK);
}

int
main(int argc, char *argv[])
{
	struct ctl	 ctl;
	struct ctl_args	 a;
	int		 rc;

	signal(SIGPIPE, SIG_IGN);
	log_init(LOG_LVL_WARN, "toolgatectl");
	json_object_seed(0);
	ctl_init(&ctl);
	memset(&a, 0, sizeof(a));
	if ((a.pos = calloc((size_t)argc + 1, sizeof(char *))) == NULL)
		return (ctl_fail("out of memory"));
	rc = dispatch(&ctl, argc, argv, &a);
	free(a.pos);
	return (rc);
}

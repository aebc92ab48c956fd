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
#include "file.h"
#include "ident.h"
#include "log.h"
#include "outbox.h"
#include "version.h"

static const struct ctl_opt global_opts[] = {
	{ "url", "URL", "broker URL (TOOLGATE_URL; default "
	    CTL_DEFAULT_URL ")", 0 },
	{ "cert", "FILE", "client certificate, PEM (TOOLGATE_CERT)", 0 },
	{ "key", "FILE", "client private key, PEM (TOOLGATE_KEY)", 0 },
	{ "ca", "FILE", "CA that signed the broker's certificate "
	    "(TOOLGATE_CA)", 0 },
	{ "db", "PATH|URI", "work offline on this database: a SQLite file or a "
	    "PostgreSQL URI (TOOLGATE_DB)", 0 },
	{ "audit-key", "FILE", "the broker's audit key, which offline (--db) "
	    "changes that widen what is allowed need (TOOLGATE_AUDIT_KEY)", 0 },
	{ "json", NULL, "machine output: JSON on stdout", 0 },
	{ "version", NULL, "print the version and exit", 0 },
	{ NULL, NULL, NULL, 0 }
};
enum { G_URL, G_CERT, G_KEY, G_CA, G_DB, G_AUDIT_KEY, G_JSON, G_VERSION };

static const struct ctl_opt opts_none[] = { { NULL, NULL, NULL, 0 } };

static const struct ctl_cmd cmd_main[] = {
	{ "submit", "submit", "--tool T [options]",
	    "sign an intent with --key and send it to the broker",
	    "toolgatectl submit --tool payments.transfer "
	    "--args '{\"to\":\"acct-1\",\"amount\":\"12.50\","
	    "\"currency\":\"USD\"}'",
	    cmd_submit_opts, 0, cmd_submit, NULL },
	{ "wait", "wait", "ID [--timeout S]",
	    "wait for a pending intent to be decided (exit 4: still pending)",
	    "toolgatectl wait in_0123456789abcdef0123456789abcdef "
	    "--timeout 600",
	    cmd_wait_opts, 1, cmd_wait, NULL },
	{ "pending", "pending", "[--status S] [--limit N] [-q] [--watch]",
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
	{ "limits", "limits", "[--agent NAME]",
	    "usage of the policy's cumulative limits: used, maximum, window, "
	    "when it frees (--db: offline)",
	    "toolgatectl limits --agent agent-payments",
	    cmd_limits_opts, 0, cmd_limits, NULL },
	{ "killswitch", "killswitch", "COMMAND", "emergency stop",
	    "toolgatectl killswitch status",
	    opts_none, 0, NULL, cmd_killswitch },
	{ "policy", "policy", "COMMAND", "check, apply or show the policy",
	    "toolgatectl policy check policies/example.json",
	    opts_none, 0, NULL, cmd_policy },
	{ "audit", "audit", "COMMAND", "verify, export, checkpoint or prune "
	    "the audit chain",
	    "toolgatectl --db toolgate.db audit verify",
	    opts_none, 0, NULL, cmd_audit },
	{ "events", "events", "COMMAND", "event delivery to notify sinks "
	    "(webhooks, Slack, a SIEM)", "toolgatectl events status",
	    opts_none, 0, NULL, cmd_events },
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

static int
help(const struct ctl_cmd *cmd)
{
	return (ctl_help(cmd, global_opts, cmd == &cmd_root));
}

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
	/* TOOLGATE_DB serves the commands that can work offline; these
	 * cannot, so they go online despite it. */
	if (ctl->db != NULL && !ctl->db_from_env)
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

const char *
ctl_db_name(const struct ctl *ctl)
{
	static char	 name[STORE_DISPLAY_MAX];

	store_display(ctl->db, name, sizeof(name));
	return (name);
}

/*
 * Open --db (migrating it) into *sp.  Unless create is set the database
 * must exist, so a typo does not silently make an empty one.  CTL_OK, or
 * the exit code after saying why: CTL_USAGE for a file that is not
 * there, CTL_FAIL when the database itself cannot be used.
 */
int
ctl_store_open(const struct ctl *ctl, int create, struct store **sp)
{
	char	 err[512];

	*sp = NULL;
	if (!create && store_spec_is_file(ctl->db) &&
	    file_readable(ctl->db, err, sizeof(err)) == -1) {
		ctl_fail("--db %s: %s", ctl_db_name(ctl), err);
		return (CTL_USAGE);
	}
	if ((*sp = store_open(ctl->db, create ? STORE_CREATE : 0, err,
	    sizeof(err))) == NULL) {
		ctl_fail("%s", err);
		return (CTL_FAIL);
	}
	return (CTL_OK);
}

/*
 * A decider for an offline change on s, with what t trusts
 * (ctl_trust_open): its events go to the sinks the
 * brokers registered in the database (outbox_rules_load), so a trip
 * made with the broker down still reaches Slack or the SIEM once a
 * broker runs.  CTL_OK, or CTL_FAIL (said why) when the sinks cannot be
 * read: a change must not go out without its events.
 */
int
ctl_decider_init(struct decider *d, struct store *s, struct ctl_trust *t)
{
	static struct outbox_rules	 rules;

	if (outbox_rules_load(s, &rules) == -1)
		return (ctl_fail("--db: cannot read the event sinks"));
	t->cfg.outbox = &rules;
	decider_init(d, s, "toolgatectl", &t->cfg);
	return (CTL_OK);
}

/*
 * The identity of --cert (URI SAN, else CN) into out.  CTL_OK, or
 * CTL_USAGE after naming the file and what is wrong with it.
 */
int
ctl_cert_identity(const struct ctl *ctl, char *out, size_t outlen)
{
	char	 why[256];

	if (file_readable(ctl->cert, why, sizeof(why)) == -1) {
		ctl_fail("--cert %s: %s", ctl->cert, why);
		return (CTL_USAGE);
	}
	if (ident_from_file(ctl->cert, out, outlen) == -1) {
		ctl_fail("--cert %s: not a PEM certificate naming an identity "
		    "(a URI SAN or a subject CN)", ctl->cert);
		return (CTL_USAGE);
	}
	return (CTL_OK);
}

/* Read a whole file ("-" = stdin) of at most max bytes into a malloc'd,
 * NUL-terminated buffer.  Prints why on failure: 0 or -1. */
int
ctl_read_file(const char *path, size_t max, char **text, size_t *len)
{
	FILE	*f = stdin;
	char	*buf, why[256] = "";
	size_t	 n;

	if (strcmp(path, "-") != 0 && (file_readable(path, why,
	    sizeof(why)) == -1 || (f = fopen(path, "rb")) == NULL)) {
		ctl_fail("%s: %s", path, why[0] ? why : strerror(errno));
		return (-1);
	}
	if ((buf = malloc(max + 1)) == NULL) {
		ctl_fail("out of memory");
		n = 0;
		goto done;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		if (ferror(f))
			ctl_fail("%s: read error", path);
		else
			ctl_fail("%s: larger than %zu bytes", path, max);
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

/*
 * Load --audit-key into t for an offline change: one that widens what is
 * allowed needs it (the broker trusts only what it tags); one that only
 * narrows is tagged when it is given.  Records are tagged, nothing is
 * checked (a tool keeps no head).  CTL_OK or the exit code (said why).
 */
int
ctl_trust_open(const struct ctl *ctl, const struct ctl_cmd *cmd, int widens,
    struct ctl_trust *t)
{
	char	 why[512];

	memset(t, 0, sizeof(*t));
	t->cfg.grant_window = LC_GRANT_WINDOW_DEFAULT;
	if (ctl->audit_key == NULL) {
		if (!widens)
			return (CTL_OK);
		return (ctl_usage(cmd, "%s --db widens what is allowed, and "
		    "the broker trusts that only when the audit key tags it: "
		    "give --audit-key FILE (the broker's --audit-key; or "
		    "TOOLGATE_AUDIT_KEY)", cmd->path));
	}
	if (audit_keys_load(&t->keys, ctl->audit_key, why, sizeof(why)) ==
	    -1) {
		ctl_fail("--audit-key %s: %s", ctl->audit_key, why);
		return (CTL_USAGE);
	}
	if (audit_trust_init(&t->trust, &t->keys, 0) == -1) {
		audit_keys_clear(&t->keys);
		return (ctl_fail("out of memory"));
	}
	t->cfg.trust = &t->trust;
	return (CTL_OK);
}

void
ctl_trust_close(struct ctl_trust *t)
{
	if (t->cfg.trust != NULL)
		audit_trust_deinit(&t->trust);
	audit_keys_clear(&t->keys);
	t->cfg.trust = NULL;
}

/* The values of every --NAME given for option index opt, in order, into
 * out (at most max); how many there were. */
int
ctl_args_all(const struct ctl_args *a, int opt, const char **out, int max)
{
	int	 i, n = 0;

	for (i = 0; i < a->nocc; i++)
		if (a->occ_opt[i] == opt) {
			if (n < max)
				out[n] = a->occ_val[i];
			n++;
		}
	return (n);
}

/* Option k of the command is val; every occurrence is kept too. */
static void
args_set(struct ctl_args *a, int k, const char *val)
{
	a->val[k] = val;
	a->occ_opt[a->nocc] = k;
	a->occ_val[a->nocc++] = val;
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
	if ((ctl->db = env("TOOLGATE_DB")) != NULL)
		ctl->db_from_env = 1;
	ctl->audit_key = env("TOOLGATE_AUDIT_KEY");
	ctl->timeout = CTL_TIMEOUT;
}

static void
global_set(struct ctl *ctl, int idx, const char *val)
{
	switch (idx) {
	case G_URL:
		/* An explicit --url means online: TOOLGATE_DB steps aside. */
		ctl->url = val;
		if (ctl->db_from_env) {
			ctl->db = NULL;
			ctl->db_from_env = 0;
		}
		break;
	case G_CERT:	ctl->cert = val; break;
	case G_KEY:	ctl->key = val; break;
	case G_CA:	ctl->ca = val; break;
	case G_DB:
		ctl->db = val;
		ctl->db_from_env = 0;
		break;
	case G_AUDIT_KEY: ctl->audit_key = val; break;
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

/* A one-letter option ("-q") of cmd at argv[*i]: -1 to go on, else the
 * usage error's exit code. */
static int
parse_short(const struct ctl_cmd *cmd, struct ctl_args *a, int argc,
    char **argv, int *i)
{
	const char	*arg = argv[*i];
	int		 k;

	for (k = 0; k < CTL_MAX_OPTS && cmd->opts[k].name != NULL; k++)
		if (cmd->opts[k].shortopt == arg[1])
			break;
	if (k == CTL_MAX_OPTS || cmd->opts[k].name == NULL)
		return (ctl_usage(cmd, "unknown option: %s", arg));
	if (cmd->opts[k].arg == NULL)
		args_set(a, k, "");
	else if (*i + 1 < argc)
		args_set(a, k, argv[++*i]);
	else
		return (ctl_usage(cmd, "%s needs %s", arg, cmd->opts[k].arg));
	return (-1);
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
	if (arg[1] != '-' && arg[2] == '\0')
		return (parse_short(cmd, a, argc, argv, i));
	if (strncmp(arg, "--", 2) != 0)
		return (ctl_usage(cmd, "unknown option: %s", arg));
	if ((k = opt_match(cmd, cmd->opts, argc, argv, i, &val, &rc)) >= 0) {
		args_set(a, k, val);
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
		printf("toolgatectl %s\n", TOOLGATE_VERSION);
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
	if ((a.pos = calloc((size_t)argc + 1, sizeof(char *))) == NULL ||
	    (a.occ_opt = calloc((size_t)argc + 1, sizeof(int))) == NULL ||
	    (a.occ_val = calloc((size_t)argc + 1, sizeof(char *))) == NULL)
		return (ctl_fail("out of memory"));
	rc = dispatch(&ctl, argc, argv, &a);
	free(a.pos);
	free(a.occ_opt);
	free(a.occ_val);
	return (rc);
}

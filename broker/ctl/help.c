/*
 * help: toolgatectl's --help text, generated from the command tables
 * (main.c and the cmd_*.c files) so that it cannot drift from what the
 * parser accepts.  Everything is wrapped to 80 columns: a line breaks only
 * between words, never inside a [bracketed group] or a quoted argument,
 * and no line ends in a space.  It only prints; parsing is main.c's.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

#define HELP_WIDTH	80
#define HELP_COL_MAX	32	/* widest left column of a table row */

/* Bytes of the unit at s: up to the next space outside [] (and, for a
 * shell command, outside quotes). */
static size_t
help_unit(const char *s, int shell)
{
	size_t	 n;
	int	 depth = 0;
	char	 quote = 0;

	for (n = 0; s[n] != '\0'; n++) {
		if (quote != 0) {
			if (s[n] == quote)
				quote = 0;
		} else if (shell && (s[n] == '\'' || s[n] == '"'))
			quote = s[n];
		else if (s[n] == '[')
			depth++;
		else if (s[n] == ']' && depth > 0)
			depth--;
		else if (s[n] == ' ' && depth == 0)
			break;
	}
	return (n);
}

/* Display columns of the UTF-8 bytes s[0..n). */
static int
help_cols(const char *s, size_t n)
{
	int	 cols = 0;
	size_t	 i;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			cols++;
	return (cols);
}

/*
 * prefix, then the units of text separated by single spaces, going on at
 * column indent when the next unit would pass HELP_WIDTH.  shell: a shell
 * example, whose broken lines end in " \" so they can be pasted.
 */
static void
help_para(const char *prefix, int indent, const char *text, int shell)
{
	int	 col = help_cols(prefix, strlen(prefix)), first = 1, n;
	size_t	 len;

	fputs(prefix, stdout);
	for (;;) {
		text += strspn(text, " ");
		if (*text == '\0')
			break;
		len = help_unit(text, shell);
		n = help_cols(text, len);
		if (!first && col + 1 + n + (shell ? 2 : 0) > HELP_WIDTH) {
			fputs(shell ? " \\\n" : "\n", stdout);
			printf("%*s", indent + (shell ? 4 : 0), "");
			col = indent + (shell ? 4 : 0);
			first = 1;
		}
		if (!first) {
			putchar(' ');
			col++;
		}
		fwrite(text, 1, len, stdout);
		col += n;
		first = 0;
		text += len;
	}
	putchar('\n');
}

/* One table row: left in a column of width w, text wrapped beside it; a
 * left part wider than w gets lines of its own (wrapped between whole
 * [...] groups). */
static void
help_row(int w, const char *left, const char *text)
{
	char	 prefix[HELP_COL_MAX + 8];

	if ((int)strlen(left) > w) {
		help_para("  ", 4, left, 0);
		left = "";
	}
	snprintf(prefix, sizeof(prefix), "  %-*s  ", w, left);
	help_para(prefix, w + 4, text, 0);
}

/* "-q, --quiet" or "--limit N" into buf. */
static void
help_opt_left(const struct ctl_opt *o, char *buf, size_t len)
{
	if (o->shortopt != '\0')
		snprintf(buf, len, "-%c, --%s%s%s", o->shortopt, o->name,
		    o->arg ? " " : "", o->arg ? o->arg : "");
	else
		snprintf(buf, len, "--%s%s%s", o->name, o->arg ? " " : "",
		    o->arg ? o->arg : "");
}

/* "name SYNOPSIS" of a table entry into buf. */
static void
help_cmd_left(const struct ctl_cmd *c, char *buf, size_t len)
{
	const char	*syn = c->sub != NULL ? "COMMAND" : c->synopsis;

	snprintf(buf, len, "%s%s%s", c->name, syn[0] ? " " : "", syn);
}

/* Width of the left column: the longest entry, at most HELP_COL_MAX. */
static int
help_width(const struct ctl_cmd *cmd, const struct ctl_opt *opts)
{
	const struct ctl_cmd	*c;
	char			 left[128];
	int			 k, n, w = (int)strlen("-h, --help");

	for (k = 0; opts[k].name != NULL; k++) {
		help_opt_left(&opts[k], left, sizeof(left));
		n = (int)strlen(left);
		w = n > w ? n : w;
	}
	for (c = cmd->sub; c != NULL && c->name != NULL; c++) {
		help_cmd_left(c, left, sizeof(left));
		n = (int)strlen(left);
		w = n > w ? n : w;
	}
	return (w > HELP_COL_MAX ? HELP_COL_MAX : w);
}

static void
help_opts(const char *title, const struct ctl_opt *opts, int w)
{
	char	 left[128];
	int	 k;

	printf("\n%s:\n", title);
	for (k = 0; opts[k].name != NULL; k++) {
		help_opt_left(&opts[k], left, sizeof(left));
		help_row(w, left, opts[k].help);
	}
	help_row(w, "-h, --help", "show this help");
}

/*
 * The help of cmd on stdout: usage, summary, sub-commands, options (the
 * global ones for the root), example; root also lists exit codes and
 * environment.  Returns CTL_OK.
 */
int
ctl_help(const struct ctl_cmd *cmd, const struct ctl_opt *global_opts,
    int root)
{
	const struct ctl_cmd	*c;
	const struct ctl_opt	*opts = root ? global_opts : cmd->opts;
	char			 line[512];
	int			 w = help_width(cmd, opts);

	snprintf(line, sizeof(line), "toolgatectl [global options]%s%s%s%s",
	    cmd->path[0] ? " " : "", cmd->path, cmd->synopsis[0] ? " " : "",
	    cmd->synopsis);
	help_para("usage: ", 7, line, 0);
	putchar('\n');
	help_para("", 0, cmd->summary, 0);
	if (cmd->sub != NULL) {
		printf("\ncommands:\n");
		for (c = cmd->sub; c->name != NULL; c++) {
			help_cmd_left(c, line, sizeof(line));
			help_row(w, line, c->summary);
		}
	}
	help_opts(root ? "global options" : "options", opts, w);
	if (!root) {
		putchar('\n');
		help_para("", 0, "global options (--url --cert --key --ca --db "
		    "--audit-key --json) may come anywhere: see 'toolgatectl "
		    "--help'", 0);
	}
	printf("\nexample:\n");
	help_para("  ", 2, cmd->example, 1);
	if (root) {
		putchar('\n');
		help_para("", 0, "exit codes: 0 done, 1 refused or failed, "
		    "2 usage (also an unreadable local file), 3 connection or "
		    "TLS failure, 4 still pending (submit without --wait, or "
		    "a wait that timed out)", 0);
		putchar('\n');
		help_para("", 0, "environment: TOOLGATE_URL, TOOLGATE_CERT, "
		    "TOOLGATE_KEY, TOOLGATE_CA, TOOLGATE_AUDIT_KEY stand in "
		    "for the global options of the same name; TOOLGATE_DB for "
		    "--db, unless --url is given (commands that exist only "
		    "online ignore it)", 0);
	}
	return (CTL_OK);
}

/*
 * canon-dump: the canonical form of each JSON text on standard input, one
 * per line, for tests/integration/test_jcs.py to compare with its own
 * implementation.  "canon-dump" writes RFC 8785 (canon_dump), "canon-dump
 * --legacy" the format 1 form (canon_dump_legacy); a line jansson cannot
 * read comes out as "?", a value the form refuses as "!".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "canon.h"

int
main(int argc, char *argv[])
{
	char	*line = NULL, *out;
	size_t	 cap = 0;
	ssize_t	 n;
	json_t	*v;
	int	 legacy = argc > 1 && strcmp(argv[1], "--legacy") == 0;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if ((v = json_loadb(line, (size_t)n, JSON_DECODE_ANY |
		    JSON_REJECT_DUPLICATES, NULL)) == NULL) {
			puts("?");
			continue;
		}
		out = legacy ? canon_dump_legacy(v) : canon_dump(v);
		puts(out != NULL ? out : "!");
		free(out);
		json_decref(v);
	}
	free(line);
	return (fflush(stdout) == 0 ? 0 : 1);
}

/*
 * replay-main: the main() of a fuzz target built without libFuzzer
 * (systemd's src/fuzz/fuzz-main.c).  Every file named on the command line,
 * or every regular file inside a directory named there, is read and handed
 * to LLVMFuzzerTestOneInput once, in name order, so the committed corpora
 * and every crash reproducer run as ordinary tests in gcc builds.  A
 * harness signals a violated invariant by aborting; an unreadable input or
 * an empty run is a failure here.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define REPLAY_MAX_BYTES	(16 * 1024 * 1024)

/* Run one file through the target.  0, or -1 if it cannot be read. */
static int
replay_file(const char *path)
{
	FILE		*f;
	struct stat	 st;
	uint8_t		*buf = NULL;
	size_t		 n;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return (-1);
	}
	if (st.st_size < 0 || st.st_size > REPLAY_MAX_BYTES) {
		fprintf(stderr, "replay: %s: too large\n", path);
		fclose(f);
		return (-1);
	}
	/* Exactly size bytes, no NUL after them: ASan sees any over-read. */
	n = (size_t)st.st_size;
	if ((buf = malloc(n ? n : 1)) == NULL || fread(buf, 1, n, f) != n) {
		fprintf(stderr, "replay: %s: short read\n", path);
		free(buf);
		fclose(f);
		return (-1);
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return (0);
}

static int
replay_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* Every regular file in dir, sorted.  The count, or -1. */
static int
replay_dir(const char *dir)
{
	DIR		*d;
	struct dirent	*e;
	struct stat	 st;
	char		**names = NULL, **grown, *path;
	size_t		 n = 0, cap = 0, i;
	int		 rc = 0;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return (-1);
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (asprintf(&path, "%s/%s", dir, e->d_name) == -1) {
			rc = -1;
			break;
		}
		if (stat(path, &st) == -1 || !S_ISREG(st.st_mode)) {
			free(path);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((grown = reallocarray(names, cap,
			    sizeof(*names))) == NULL) {
				free(path);
				rc = -1;
				break;
			}
			names = grown;
		}
		names[n++] = path;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), replay_cmp);
	for (i = 0; i < n; i++) {
		if (rc != -1 && replay_file(names[i]) == -1)
			rc = -1;
		free(names[i]);
	}
	free(names);
	return (rc == -1 ? -1 : (int)n);
}

int
main(int argc, char *argv[])
{
	struct stat	 st;
	int		 i, n, total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
		return (2);
	}
	if (LLVMFuzzerInitialize(&argc, &argv) != 0)
		return (1);
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
			    strerror(errno));
			return (1);
		}
		if (S_ISDIR(st.st_mode))
			n = replay_dir(argv[i]);
		else
			n = replay_file(argv[i]) == -1 ? -1 : 1;
		if (n == -1)
			return (1);
		total += n;
	}
	if (total == 0) {
		fprintf(stderr, "replay: no input found\n");
		return (1);
	}
	printf("replay: %d inputs ok\n", total);
	return (0);
}

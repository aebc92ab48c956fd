/*
 * file: why a file named on a command line cannot be used, in words an
 * operator can act on ("No such file or directory", "is a directory"),
 * checked before a library that would only say "system lib" reads it.
 * It opens nothing it keeps and reads no contents.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "file.h"

int
file_check(const char *path, mode_t *mode, char *why, size_t whylen)
{
	struct stat	 st;
	int		 fd;

	if (path == NULL) {
		snprintf(why, whylen, "no file given");
		return (-1);
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(why, whylen, "%s", strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) == -1)
		snprintf(why, whylen, "%s", strerror(errno));
	else if (S_ISDIR(st.st_mode))
		snprintf(why, whylen, "is a directory, not a file");
	else {
		close(fd);
		*mode = st.st_mode;
		return (0);
	}
	close(fd);
	return (-1);
}

int
file_check_secret(const char *path, char *why, size_t whylen)
{
	mode_t	 mode;
	char	 e[256];

	if (file_check(path, &mode, e, sizeof(e)) == -1) {
		snprintf(why, whylen, "cannot read key: %s", e);
		return (-1);
	}
	if (mode & (S_IRWXG | S_IRWXO)) {
		snprintf(why, whylen, "private key is accessible by group or "
		    "others (mode %04o): chmod 600 it",
		    (unsigned)(mode & 07777));
		return (-1);
	}
	return (0);
}

int
file_readable(const char *path, char *why, size_t whylen)
{
	mode_t	 mode;

	return (file_check(path, &mode, why, whylen));
}

/*
 * audit_anchor: the broker's anchor file — the newest record it verified,
 * {"at", "hash", "seq", "tagged", "tag"}, tagged with the audit key
 * (HMAC over AUDIT_MAC_ANCHOR and the RFC 8785 form of the other four
 * members).  It lives outside the database (config audit-anchor) so that
 * an older copy of the database, or one with its tail cut, no longer
 * holds what the anchor says; and the next start verifies only the
 * records after it.  Written atomically: a new file, fsync, rename.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_trust_impl.h"
#include "canon.h"
#include "log.h"

/* The MAC input of an anchor: RFC 8785 of its four facts. */
static char *
anchor_body(const struct trust_anchor *a)
{
	json_t	*o;
	char	*text;

	o = json_pack("{sI ss sI sb}", "at", (json_int_t)a->at, "hash",
	    a->head.hash, "seq", (json_int_t)a->head.seq, "tagged",
	    a->tagged);
	text = o != NULL ? canon_dump(o) : NULL;
	json_decref(o);
	return (text);
}

static int
anchor_mac(const struct audit_keys *ks, const struct audit_key *k,
    const struct trust_anchor *a, char mac[65])
{
	char	*body;
	int	 rc;

	if ((body = anchor_body(a)) == NULL)
		return (-1);
	rc = audit_mac(ks, k, AUDIT_MAC_ANCHOR, body, strlen(body), NULL, 0,
	    NULL, 0, mac);
	free(body);
	return (rc);
}

/* Why the anchor text does not verify, or NULL with *a filled. */
static const char *
anchor_parse(const struct audit_keys *ks, const char *text, size_t len,
    struct trust_anchor *a)
{
	const struct audit_key	*k;
	json_t			*o;
	json_int_t		 at, seq;
	const char		*hash, *tag, *why = NULL;
	char			 mac[65];
	int			 tagged;

	memset(a, 0, sizeof(*a));
	if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) ==
	    NULL || json_unpack(o, "{s:I, s:s, s:I, s:b, s:s !}", "at", &at,
	    "hash", &hash, "seq", &seq, "tagged", &tagged, "tag", &tag) != 0 ||
	    strlen(hash) != 64 || seq < 0 || strlen(tag) != AUDIT_TAG_LEN ||
	    tag[AUDIT_KID_LEN] != '.') {
		json_decref(o);
		return ("it is not an anchor");
	}
	a->at = at;
	a->head.seq = seq;
	memcpy(a->head.hash, hash, 65);
	a->tagged = tagged;
	if ((k = audit_keys_find(ks, tag, AUDIT_KID_LEN)) == NULL)
		why = "it was written under an audit key this broker does not "
		    "hold";
	else if (anchor_mac(ks, k, a, mac) == -1)
		why = "out of memory";
	else if (!canon_ct_equal(mac, tag + AUDIT_KID_LEN + 1, 64))
		why = "its tag does not verify: it was altered or forged";
	json_decref(o);
	return (why);
}

int
trust_anchor_read(struct audit_trust *t, const char *path,
    struct trust_anchor *a)
{
	char		 buf[ANCHOR_MAX + 1];
	const char	*why;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return (0);
		audit_trust_break(t, 0, "the anchor %s cannot be read: %s",
		    path, strerror(errno));
		return (-1);
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || n > ANCHOR_MAX)
		why = n < 0 ? strerror(errno) : "it is too large";
	else
		why = anchor_parse(t->keys, buf, (size_t)n, a);
	if (why != NULL) {
		audit_trust_break(t, 0, "the anchor %s does not verify: %s "
		    "(remove it only if the audit key was replaced or the "
		    "database restored on purpose)", path, why);
		return (-1);
	}
	return (1);
}

/* Write text to path through a temporary file, durably. */
static int
anchor_write(const char *path, const char *text)
{
	char	 tmp[4096], dir[4096];
	size_t	 len = strlen(text);
	int	 fd, dfd, rc = -1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return (-1);
	snprintf(dir, sizeof(dir), "%s", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		log_warn("%s: %s", __func__, tmp);
		return (-1);
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) == -1)
		log_warn("%s: %s", __func__, tmp);
	else
		rc = 0;
	close(fd);
	if (rc == 0 && rename(tmp, path) == -1) {
		log_warn("%s: rename to %s", __func__, path);
		rc = -1;
	}
	if (rc == -1) {
		unlink(tmp);
		return (-1);
	}
	/* The rename itself must survive a crash. */
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	return (0);
}

int
audit_trust_save_anchor(struct audit_trust *t, const char *path, int64_t now)
{
	struct trust_anchor	 a;
	char			 mac[65], *text;
	int			 rc;

	if (path == NULL || t->keys == NULL || audit_trust_broken(t))
		return (-1);
	memset(&a, 0, sizeof(a));
	pthread_mutex_lock(&t->lock);
	a.head = t->known;
	a.tagged = t->tagged;
	pthread_mutex_unlock(&t->lock);
	a.at = now;
	if (anchor_mac(t->keys, &t->keys->k[0], &a, mac) == -1)
		return (-1);
	if (asprintf(&text, "{\"at\":%lld,\"hash\":\"%s\",\"seq\":%lld,"
	    "\"tag\":\"%s.%s\",\"tagged\":%s}\n", (long long)a.at,
	    a.head.hash, (long long)a.head.seq, t->keys->k[0].kid, mac,
	    a.tagged ? "true" : "false") == -1)
		return (-1);
	rc = anchor_write(path, text);
	free(text);
	return (rc);
}

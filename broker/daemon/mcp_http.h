/*
 * mcp_http: a small HTTP/1.1 client for the gateway's upstreams (plain
 * or TLS), splitting answers into messages: an application/json body is
 * one, a text/event-stream body one per SSE event.  Bounded and with a
 * deadline per exchange; a pool and its exchanges belong to the thread of
 * its target's event base.  See mcp_http.c.
 */
#pragma once

#include <stddef.h>

#include <openssl/ssl.h>

struct event_base;
struct evdns_base;
struct mhttp;
struct mhttp_pool;

/* Where an upstream is, and how to reach it (borrowed for the pool's
 * lifetime). */
struct mhttp_target {
	struct event_base	*base;
	struct evdns_base	*dns;
	SSL_CTX			*ssl_ctx;	/* NULL: plain HTTP */
	const char		*host;		/* name or address, no brackets */
	int			 port;
	const char		*authority;	/* the Host header */
	const char		*path;		/* request target */
	int			 timeout;	/* s, per exchange */
	int			 max_idle;	/* keep-alive connections kept */
};

struct mhttp_request {
	const char	*method;
	const char	*headers;	/* extra "Name: value\r\n" lines, or NULL */
	const char	*body;		/* sent as application/json, or NULL */
	size_t		 body_len;
	size_t		 max_body;	/* a JSON body, or one SSE event */
	int		 reuse;		/* may use an idle connection */
	int		 no_deadline;	/* a long-lived stream (GET) */
};

/* Every callback is optional; none may call mhttp_cancel on its own
 * exchange. */
struct mhttp_cbs {
	/* The status line arrived; -1 stops the exchange (on_end(NULL)). */
	int	(*on_status)(int status, void *arg);
	/* Each header line other than the framing ones ("Name: value"). */
	void	(*on_header)(const char *line, void *arg);
	/* One message: the JSON body, or one SSE event's data (not
	 * NUL-terminated).  1 when the owner has what it came for: the
	 * exchange ends there (on_end(NULL)); 0 to read on. */
	int	(*on_message)(const char *text, size_t len, void *arg);
	/* The last call for the exchange: error is NULL when the answer
	 * ended cleanly, else what went wrong.  The handle is gone. */
	void	(*on_end)(const char *error, void *arg);
};

struct mhttp_pool *mhttp_pool_new(const struct mhttp_target *t);
void	mhttp_pool_free(struct mhttp_pool *p);
/* Start an exchange; NULL when it cannot even start (no callback then). */
struct mhttp *mhttp_send(struct mhttp_pool *p, const struct mhttp_request *rq,
	    const struct mhttp_cbs *cbs, void *arg);
/* Abandon an exchange: no more callbacks, its connection closed. */
void	mhttp_cancel(struct mhttp *h);

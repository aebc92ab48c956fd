/*
 * http: evhttp wiring for one worker — limits, the fail-closed peer
 * check and the framing check every request passes, and the reply
 * writers every answer goes through (JSON bodies, error objects,
 * no-store, one TLS record for small answers, shared bytes for many
 * identical ones).  Which handler runs, and who may call it, is routes.c.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include "commit.h"
#include "reason.h"
#include "tls.h"

struct worker;

struct request {
	struct evhttp_request	*req;
	struct worker		*w;
	const struct tls_peer	*peer;
	const char		*path;		/* decoded path, no query */
	const char		*id;		/* {id} segment, if any */
	const char		*query;		/* raw query string or NULL */
	uint64_t		 t0;		/* monotonic µs, at arrival */
	int			 deferred;	/* answered later: the answer
						 * records the latency */
};

void	http_setup(struct worker *w);
/* Send body (stolen) as JSON with status. */
void	http_reply_json(struct request *rq, int status, json_t *body);
/* Send {"error": code, "message": msg} with r's status; msg NULL = default. */
void	http_reply_error(struct request *rq, enum reason r, const char *msg);
void	http_reply_text(struct request *rq, int status, const char *ctype,
	    const char *text, size_t len);
/* Send the JSON in buf (stolen) with status. */
void	http_reply_buffer(struct request *rq, int status, struct evbuffer *buf);
/* The body as contiguous bytes (NULL when empty); *len its size. */
const char *http_body(struct request *rq, size_t *len);
/* 1 if the request's Content-Type is mime (parameters allowed). */
int	http_content_type_is(struct request *rq, const char *mime);
/* Monotonic microseconds. */
uint64_t http_now_us(void);
/* A deferred request's answer is out: count its latency from rq->t0. */
void	http_record_latency(struct worker *w, uint64_t t0);
/*
 * A request's job for the writer (commit.h): the handler sets job.run
 * (and job.ran if it needs it), answer and release; http_submit queues
 * it and defers rq.  After the commit, on rq's thread, answer runs (and
 * logs what was done); when the client has left meanwhile, its rq->req
 * is NULL and the http_reply_* calls drop the answer.  Then release,
 * which frees the job.
 */
struct http_job {
	struct commit_job	 job;		/* first */
	uint64_t		 t0;
	void			(*answer)(struct request *rq,
				    struct http_job *hj);
	void			(*release)(struct http_job *hj);
};
void	http_submit(struct request *rq, struct http_job *hj);

/* Bytes answered to many requests at once (long-poll wake-ups). */
struct http_blob;
/* Takes ownership of data (malloc'd); NULL when out of memory. */
struct http_blob *http_blob_new(char *data, size_t len);
void	http_blob_unref(struct http_blob *b);
/* Answer req (of worker w) with the JSON in b, sharing its bytes. */
void	http_reply_blob(struct worker *w, struct evhttp_request *req,
	    int status, struct http_blob *b);
/* Answer req (of worker w) with an error, as http_reply_error. */
void	http_reply_error_to(struct worker *w, struct evhttp_request *req,
	    enum reason r, const char *msg);

/*
 * routes: the route table — method, path pattern, who may call it, the
 * handler — and the one place that checks the "who" column before any
 * handler runs.
 */
#pragma once

#include "http.h"

/* Find rq's route, authorise the caller, run the handler (or answer
 * 404/405/403/503 itself). */
void	routes_dispatch(struct request *rq);

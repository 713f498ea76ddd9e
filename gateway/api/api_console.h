/*
 * api_console.h - GET /console/...: the web console's static files (index.html, its
 * script, its style sheet and its icon), served without a key: they hold no data, the pages ask
 * the API with the key the user signs in with.
 *
 * Contract: rq->seg is the path after "/console/" ("" is index.html). A known file is
 * answered 200 with its Content-Type and ETag, or 304 when rq->if_none_match names that
 * ETag; any other name is a 404 problem. "/console" without the slash is a 308 to
 * "/console/", so the pages' relative links resolve. The security headers every answer
 * gets (a strict Content-Security-Policy among them) are api_server's.
 */
#ifndef BG_API_CONSOLE_H
#define BG_API_CONSOLE_H

#include "gateway/api/api_int.h"

void api_console(const api_req *rq, api_resp *r);

#endif

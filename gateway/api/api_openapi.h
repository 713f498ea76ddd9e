/*
 * api_openapi.h - the OpenAPI 3.0 document of the HTTP API (GET /v1/openapi.json):
 * exactly the resources api.h lists, their parameters, answers and problems.
 */
#ifndef BG_API_OPENAPI_H
#define BG_API_OPENAPI_H

#include "gateway/api/api_int.h"

/* The document, NUL-terminated. */
extern const char api_openapi_text[];

void api_openapi(api_resp *r);

#endif

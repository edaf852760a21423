"""OpenAPI additions: every operation documents the error body for the 4xx it can answer."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": "The body of every 4xx answer, and of a 503 when a service the request needs is down.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer", "description": "The HTTP status, repeated."},
                "code": {
                    "type": "string",
                    "description": "Machine-readable, e.g. `invalid`, `not_found`, `not_authenticated`, `throttled`.",
                },
                "message": {"type": "string", "description": "One sentence for people."},
                "fields": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Per field (or `lines` for a CSV import), the problems found.",
                },
            },
            "required": ["status", "code", "message", "fields"],
        },
    },
    "required": ["error"],
}

DESCRIPTIONS = {
    "400": "Invalid input: see `error.fields`.",
    "401": "No credentials, or an invalid, revoked or expired token.",
    "403": "Signed in but not allowed (staff only), or a missing CSRF token with session authentication.",
    "404": "No such object, or it belongs to someone else.",
    "415": "Unsupported content type.",
    "429": "Too many requests: see the Retry-After header.",
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def add_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: adds the Error component and its 4xx responses."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            codes = ["401", "403", "429"]
            if "{" in path:
                codes.append("404")
            if method != "get" or any(p.get("in") == "query" for p in operation.get("parameters", [])):
                codes.append("400")
            if operation.get("requestBody"):
                codes.append("415")
            for code in codes:
                responses.setdefault(code, {"description": DESCRIPTIONS[code]})
            for code, response in responses.items():
                # Whatever a view declared, a 4xx (or a 503: a service it needs is down) carries the error body.
                if code.startswith("4") or code == "503":
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
    return result

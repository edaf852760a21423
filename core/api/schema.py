"""OpenAPI additions: operations tagged by resource with a summary each, and every operation
documents the error body for the 4xx it can answer."""

from __future__ import annotations

import re

from django.utils.text import capfirst
from drf_spectacular import openapi

# The tags, in the order the docs show them; AutoSchema below derives each viewset's from its
# object name, and a test holds every operation to this list.
TAGS = [
    {"name": "Assets", "description": "The tracked Binance pairs; staff may retrain or roll back their models."},
    {"name": "Candles", "description": "Closed candles of an asset's interval."},
    {"name": "Forecasts", "description": "Forecasts with their 80% band, and the one the pages show."},
    {"name": "Model versions", "description": "Trained models, their backtests and which one is champion."},
    {"name": "Training runs", "description": "Trainings queued, running and finished."},
    {"name": "Portfolios", "description": "Your portfolios: holdings, performance, projected value, CSV import."},
    {"name": "Transactions", "description": "The buys and sells of one of your portfolios."},
    {
        "name": "Exchange connections",
        "description": "Binance accounts (read-only keys) whose trades, deposits and withdrawals a portfolio imports.",
    },
    {"name": "Tokens", "description": "Your API tokens, and a check of the one you send."},
]
# Summaries of the standard actions; every other action states its own (extend_schema(summary=…)).
SUMMARIES = {
    "list": "List {plural}",
    "retrieve": "Get {a} {name}",
    "create": "Create {a} {name}",
    "update": "Replace {a} {name}",
    "partial_update": "Change some fields of {a} {name}",
    "destroy": "Delete {a} {name}",
}


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class AutoSchema(openapi.AutoSchema):
    """Operations grouped by the resource they act on ("Candles", not the path's first part, which
    made everything "v1"), each with a one-line summary. Views name their objects through
    core.api.mixins.NamedObjects; anything else states its tags and summary with extend_schema."""

    def _object_name(self) -> str | None:
        get_name = getattr(self.view, "get_object_name", None)
        return get_name() if get_name is not None else None

    def get_tags(self) -> list[str]:
        name = self._object_name()
        return [capfirst(name) + "s"] if name else super().get_tags()

    def get_summary(self) -> str | None:
        name, action = self._object_name(), getattr(self.view, "action", None)
        if not name or action not in SUMMARIES:
            return None
        summary = SUMMARIES[action].format(a=_a(name), name=name, plural=name + "s")
        # A list below another object says whose: "List an asset's candles".
        parent = re.search(r"/([a-z-]+)/\{[^}]+\}/[a-z-]+/$", self.path)
        if action == "list" and parent:
            owner = parent.group(1).removesuffix("s").replace("-", " ")
            summary = f"List {_a(owner)} {owner}'s {name}s"
        return summary


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


def add_tags(result, generator, request, public):
    """drf-spectacular post-processing hook: the tags with their descriptions, in reading order."""
    result["tags"] = TAGS
    return result


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

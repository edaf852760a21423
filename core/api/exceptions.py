"""One error body for every 4xx: {"error": {"status", "code", "message", "fields"}}."""

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler


def _first_message(detail) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        inner = _first_message(value)
        return inner if key == "non_field_errors" else f"{key}: {inner}"
    return str(detail)


def _throttled_anonymous(exc, context):
    """Refusals for missing or bad credentials count against the anonymous rate. DRF checks
    permissions before throttles, so otherwise no anonymous request to a protected endpoint would
    ever be throttled, and guessing keys would cost nothing."""
    request, view = context.get("request"), context.get("view")
    if request is None or view is None:
        return exc
    throttle = AnonRateThrottle()
    if throttle.allow_request(request, view):
        return exc
    return exceptions.Throttled(throttle.wait())


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def api_exception_handler(exc, context):
    # Django's limits on the body surface while DRF parses it; answered like every other 4xx
    # instead of Django's HTML "Bad Request" page.
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024} KB.")
    elif isinstance(exc, TooManyFieldsSent):
        exc = exceptions.ParseError(f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields were sent.")
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            # Model-wide errors (e.g. a unique name) under DRF's key, not Django's "__all__".
            errors = {("non_field_errors" if k == NON_FIELD_ERRORS else k): v for k, v in exc.message_dict.items()}
        else:
            errors = {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(errors)
    elif isinstance(exc, Http404):
        # Django's own text ("No Portfolio matches the given query.") names a class, not what was
        # asked for; views name the object (core.api.mixins.NamedObjects), this is the rest.
        request = context.get("request")
        exc = exceptions.NotFound(f"Nothing found at {request.path}." if request is not None else None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        exc = _throttled_anonymous(exc, context)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    fields = detail if isinstance(detail, dict) else {}
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if isinstance(code, (dict, list)):
        code = "invalid"
    body = {
        "error": {"status": response.status_code, "code": code, "message": _first_message(detail), "fields": fields}
    }
    response.data = body
    return response


def not_found(name: str, by: str, value, *, hint: str = "") -> exceptions.NotFound:
    """A 404 that says what was not found: "No portfolio with id 12." (plus an optional hint)."""
    message = f"No {name} with {by} {value}"
    return exceptions.NotFound(f"{message}; {hint}" if hint else f"{message}.")


def error_response(message: str, *, status_code=status.HTTP_400_BAD_REQUEST, code="invalid", fields=None):
    return Response(
        {"error": {"status": status_code, "code": code, "message": message, "fields": fields or {}}}, status=status_code
    )

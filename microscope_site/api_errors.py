"""The API's one error shape, whoever answers: DRF's views, Django before or around them, DEBUG on
or off.

    {"error": {"status": 400, "code": "invalid", "detail": …,
               "errors": [{"attr": …, "code": …, "detail": …}]}}

`code` is one word per kind of failure (`CODES`, by status); `detail` is a sentence, or for
invalid input an object naming each field (or query parameter) with its messages, as DRF gives
them; `errors` lists every message flat, with the field it is about (`attr`, null when about
the whole request) and that message's own code (`required`, `max_length`, `invalid`, …).

DRF's errors go through drf-standardized-errors (`DRF_STANDARDIZED_ERRORS` in settings): its
handler turns every exception into an `APIException` (a 500 too, with DEBUG on), and its schema
class documents the error answers of each operation; `ApiErrorFormatter` keeps our documented
shape instead of the package's own. What Django answers outside DRF under /api/ (an unrouted
path, a body over the limit, a crash in a middleware, DEBUG's HTML pages) is rewritten into the
same shape by `ApiErrorsAsJson`.
"""

import sys
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from drf_standardized_errors.formatter import ExceptionFormatter, flatten_errors
from drf_standardized_errors.openapi import AutoSchema
from rest_framework import exceptions, permissions, serializers
from rest_framework.response import Response

API_PREFIX = "/api/"
# Set on view methods that take an `Idempotency-Key` (neurons.idempotency.idempotent).
IDEMPOTENT_MARK = "takes_idempotency_key"

# Every `code` the API answers, by status. docs/API.md lists them; the schema names them.
CODES: dict[int, list[str]] = {
    400: ["invalid", "parse_error", "bad_request", "request_too_large", "too_many_fields"],
    401: ["not_authenticated", "authentication_failed"],
    403: ["permission_denied"],
    404: ["not_found"],
    405: ["method_not_allowed"],
    406: ["not_acceptable"],
    415: ["unsupported_media_type"],
    422: ["idempotency_key_reused"],
    429: ["throttled"],
    500: ["server_error"],
    503: ["database_unavailable"],
}
_DEFAULT_CODE = {status: codes[0] for status, codes in CODES.items()}
_DEFAULT_DETAIL = {
    400: "The request was refused.",
    404: "Not found.",
    405: "Method not allowed.",
    500: "Server error: the request failed; it has been logged.",
}


def error_body(
    status: int, code: str, detail: Any, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    if errors is None:
        errors = [{"attr": None, "code": code, "detail": str(detail)}]
    return {"error": {"status": status, "code": code, "detail": detail, "errors": errors}}


def error_response(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse(error_body(status, code, detail), status=status)


# --- DRF: drf-standardized-errors' handler with our shape ------------------------------------


class ApiErrorFormatter(ExceptionFormatter):
    """drf-standardized-errors' formatter, answering `{"error": {…}}` (see the module)."""

    def run(self) -> Any:
        exc = self.exc
        status = exc.status_code
        if isinstance(exc, exceptions.ValidationError):
            code = "invalid"
        elif status >= 500:
            code = _DEFAULT_CODE.get(status, "server_error")
        else:
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else _DEFAULT_CODE.get(status, "invalid")
        detail: Any = exc.detail
        if isinstance(detail, exceptions.ErrorDetail):
            detail = str(detail)
        errors = [
            {"attr": error.attr, "code": error.code, "detail": error.detail}
            for error in flatten_errors(exc.detail)
        ]
        return error_body(status, code, detail, errors)


# --- the schema: every operation's error answers, in our shape --------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string"},
            {"type": "object", "additionalProperties": {}},
            {"type": "array", "items": {}},
        ],
        "description": "a sentence, or for invalid input each field or parameter with its messages",
    }
)
class _DetailField(serializers.JSONField):
    """`detail` as the schema shows it: a sentence, or the messages of each invalid field."""


class ErrorItemSerializer(serializers.Serializer[Any]):
    attr = serializers.CharField(
        allow_null=True, help_text="the field or query parameter at fault; null for the request"
    )
    code = serializers.CharField(help_text="this message's code: required, max_length, invalid…")
    detail = serializers.CharField()


def _field(base: type[serializers.Field[Any, Any, Any, Any]], schema: dict[str, Any]) -> Any:
    """An instance of a subclass of `base` that the schema shows as `schema`."""
    return extend_schema_field(schema)(type(base.__name__, (base,), {}))()


def _error_serializers() -> dict[int, type[serializers.Serializer[Any]]]:
    made: dict[int, type[serializers.Serializer[Any]]] = {}
    for status, codes in CODES.items():
        body = type(
            f"Error{status}Body",
            (serializers.Serializer,),
            {
                # Not `enum`s: drf-spectacular would make components of them, colliding by name.
                "status": _field(
                    serializers.IntegerField,
                    {"type": "integer", "minimum": status, "maximum": status},
                ),
                "code": _field(
                    serializers.CharField,
                    {
                        "type": "string",
                        "pattern": f"^({'|'.join(codes)})$",
                        "description": " or ".join(codes),
                    },
                ),
                "detail": _DetailField(),
                "errors": ErrorItemSerializer(many=True),
            },
        )
        made[status] = type(
            f"Error{status}", (serializers.Serializer,), {"error": body()}
        )  # the component `Error404`, …
    return made


ERROR_SERIALIZERS = _error_serializers()
# `Error400` … `Error503`: importable by name, as DRF_STANDARDIZED_ERRORS["ERROR_SCHEMAS"] wants.
globals().update({serializer.__name__: serializer for serializer in ERROR_SERIALIZERS.values()})


class ApiAutoSchema(AutoSchema):
    """drf-standardized-errors' schema class (it decides which statuses an operation can
    answer: 400 where there is input, 401 where there is authentication, 404 for paths with
    parameters and for cursor-paginated lists, 429 where there are throttles…), with our
    serializers (`DRF_STANDARDIZED_ERRORS["ERROR_SCHEMAS"]`) and these corrections:

    - 403 only where a permission can refuse this method: a read anyone may make is never
      403 (the package documents it for every view that has a permission class);
    - 404 on a list only where it is paginated (a malformed cursor), not on every write of a
      paginated view; a write naming other rows by id says so itself (`extend_schema`);
    - the `Idempotency-Key` header and its 422 on the writes that take one;
    - examples in our shape, not the package's.
    """

    def _handler(self) -> Any:
        action = getattr(self.view, "action", None)
        return getattr(self.view, action or self.method.lower(), None)

    def _idempotent(self) -> bool:
        return bool(getattr(self._handler(), IDEMPOTENT_MARK, False))

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self._idempotent():
            parameters.append(
                OpenApiParameter(
                    "Idempotency-Key",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    description="Send the same key to retry safely: the same request answers "
                    "its first answer again (`Idempotent-Replayed: true`), nothing is stored "
                    "twice; a different request with a used key is a 422. Kept 24 h.",
                    pattern=r"^[\x21-\x7e]{1,255}$",
                )
            )
        return parameters

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        if direction == "response" and self._idempotent() and "422" not in responses:
            responses["422"] = self._get_response_for_code(ERROR_SERIALIZERS[422], "422")
        return responses

    def _should_add_http404_error_response(self) -> bool:
        has_path_parameters = any(p["in"] == "path" for p in self._get_parameters())
        paginated_list = (
            self.method == "GET" and self._is_list_view() and self._get_paginator() is not None
        )
        return has_path_parameters or paginated_list

    def _should_add_http403_error_response(self) -> bool:
        if self.method in permissions.SAFE_METHODS:
            read_anyone = (
                permissions.AllowAny,
                permissions.IsAuthenticatedOrReadOnly,
            )
            checks = self.view.get_permissions()
            if all(
                isinstance(p, read_anyone) or getattr(p, "reads_are_public", False) for p in checks
            ):
                return False
        return True

    def _get_error_response_examples(self) -> list[Any]:
        return []


# --- Django, outside DRF: everything under /api/ answers the same shape ----------------------

_MARK = "_api_error"


def _mark_exception(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """Remembers what failed, so `ApiErrorsAsJson` can say it (Django turns the exception into
    a response before an outer middleware sees it)."""
    if request is not None:
        setattr(request, _MARK, sys.exc_info()[1])


got_request_exception.connect(_mark_exception, dispatch_uid="microscope_site.api_errors")


def _too_big(error: BaseException | None) -> tuple[str, str] | None:
    if isinstance(error, RequestDataTooBig):
        return "request_too_large", (
            f"the request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
        )
    if isinstance(error, TooManyFieldsSent | TooManyFilesSent):
        return "too_many_fields", (
            f"the request has over {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields"
        )
    return None


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The site's 400 (`handler400`, DEBUG off): the API's shape under /api/."""
    from django.views import defaults

    if not request.path_info.startswith(API_PREFIX):
        return defaults.bad_request(request, exception)
    code, detail = _too_big(exception) or ("bad_request", "the request was refused")
    return error_response(400, code, detail)


class ApiErrorsAsJson:
    """Under /api/, a request is refused before any view reads it when it holds a NUL byte
    (PostgreSQL cannot store or compare one) or announces a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE (DRF's parsers read JSON bodies without Django's limit), and
    an error answer that is not DRF's (Django's 404 for an unrouted path, its HTML debug pages
    with DEBUG on, a 500 from a middleware) is replaced by the API's error shape, keeping the
    headers that matter (`Allow`, `Retry-After`, `WWW-Authenticate`).

    Near the top of MIDDLEWARE, so it sees what every later middleware answers."""

    _KEPT = ("Allow", "Retry-After", "WWW-Authenticate", "Cache-Control", "Vary")

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        refused = self._refuse(request)
        if refused is not None:
            return refused
        response = self.get_response(request)
        # DRF's own answers already have the shape, in JSON or, asked for, the browsable API.
        if response.status_code < 400 or _is_json(response) or isinstance(response, Response):
            return response
        return self._as_json(request, response)

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        values = [value for _key, values in request.GET.lists() for value in values]
        if "\x00" in request.path_info or any("\x00" in v for v in [*request.GET, *values]):
            return error_response(400, "bad_request", "NUL bytes are not allowed in URLs.")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "bad_request", "Content-Length is not a number.")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return error_response(
                400, "request_too_large", f"the request body is over {limit} bytes"
            )
        return None

    def _as_json(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        status = response.status_code
        error = getattr(request, _MARK, None)
        too_big = _too_big(error)
        if too_big is not None:
            code, detail = too_big
        elif status == 404:
            code, detail = "not_found", f"Nothing is at {request.path_info}."
        elif status == 405:
            code = "method_not_allowed"
            detail = f"{request.method} is not allowed here."
        else:
            code = _DEFAULT_CODE.get(status, "server_error" if status >= 500 else "bad_request")
            detail = _DEFAULT_DETAIL.get(status, response.reason_phrase)
        answer = error_response(status, code, detail)
        for name in self._KEPT:
            if name in response:
                answer[name] = str(response[name])
        return answer


def _is_json(response: Any) -> bool:
    content_type = str(response.get("Content-Type", ""))
    return content_type.startswith("application/json") or "+json" in content_type.split(";")[0]

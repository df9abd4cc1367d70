"""What every API endpoint shares: one exception handler (services' refusals become 4xx with
their message; anything else a JSON 500) and the 202 answer of job triggers."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.urls import reverse
from drf_standardized_errors.handler import ExceptionHandler
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from microscope_site.errors import Moved, Refused


class ApiRefused(exceptions.APIException):
    """A service's refusal as DRF sees it; a 400 has a validation error's code (`invalid`).
    One that names the field at fault is raised as a `ValidationError` (`_api_exception`), so
    its detail is `{field: [message]}` like a serializer's."""

    def __init__(self, message: str, status_code: int, field: str | None = None) -> None:
        self.status_code = status_code
        codes = {400: "invalid", 403: "permission_denied", 404: "not_found", 429: "throttled"}
        super().__init__({field: [message]} if field else message, codes.get(status_code))


def _api_exception(exc: Exception) -> Exception:
    if isinstance(exc, Refused):
        if exc.status == status.HTTP_400_BAD_REQUEST and exc.field:
            return exceptions.ValidationError({exc.field: [str(exc)]})
        return ApiRefused(str(exc), exc.status, exc.field)
    if isinstance(exc, Http404):
        return exceptions.NotFound(*exc.args)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    return exc


class ApiExceptionHandler(ExceptionHandler):
    """drf-standardized-errors' handler (`DRF_STANDARDIZED_ERRORS` in settings): services'
    refusals (`Refused`) become 4xx with their message, a throttle keeps its `Retry-After`,
    and any other exception is a JSON 500 whatever DEBUG is, except two that middleware
    answers: a renamed model or layer (`Moved`, 301) and a lost database (503)."""

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        return _api_exception(exc)

    def should_not_handle(self, exc: Exception) -> bool:
        return isinstance(exc, Moved | OperationalError | InterfaceError)

    def get_headers(self, exc: exceptions.APIException) -> dict[str, str]:
        headers = super().get_headers(exc)
        retry_after = getattr(self.exc, "retry_after", None)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return {name: str(value) for name, value in headers.items()}


def accepted(request: Request, jobs: list[Any], view_name: str, **extra: Any) -> Response:
    """202 with each job's URL (Location: the first), or 200 when there was nothing to do."""
    urls = [request.build_absolute_uri(reverse(view_name, kwargs={"pk": j.pk})) for j in jobs]
    body = {
        "jobs": [
            {
                "id": j.pk,
                "url": url,
                "status": j.status,
                # The row is saved but the broker was unreachable: the reaper sends it later.
                **({"note": j.error} if j.error.startswith("not queued:") else {}),
            }
            for j, url in zip(jobs, urls, strict=True)
        ],
        **extra,
    }
    if not jobs:
        return Response(body, status=status.HTTP_200_OK)
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": urls[0]})

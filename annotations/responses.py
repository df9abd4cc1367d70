"""How a refused write answers: the form again with the reason, and the right 4xx status."""

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotations.errors import AnnotationRefused
from microscope_site.errors import RateLimited


def refused(
    request: HttpRequest,
    error: AnnotationRefused,
    template: str,
    context: dict[str, Any],
    form: forms.Form | None = None,
) -> HttpResponse:
    """Render `template` with the error on its field (or the whole form), with 400, 403 or 429."""
    if form is not None:
        form.add_error(error.field if error.field in form.fields else None, str(error))
    response = render(
        request, template, {**context, "form": form, "error": error}, status=error.status
    )
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def invalid(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """A form that did not validate: 400, with its errors shown."""
    return render(request, template, context, status=400)

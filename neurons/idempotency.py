"""`Idempotency-Key` on the API's writes that create rows (notes, comments, reports, tokens,
imports, exports, job triggers).

The same key from the same user with the same request (method, path and body) answers the
first answer again (`Idempotent-Replayed: true`), and nothing is stored twice; the same key with
a different request is a 422 (`idempotency_key_reused`). A key lives `IDEMPOTENCY_KEY_TTL_S`
(24 h); after that it may be used afresh. Only successful answers are kept: a refused request
(4xx) stores nothing, so it can be corrected and sent again with its key.

The key's row is claimed first, in the transaction that does the write: a second request with
the same key waits on the unique index (PostgreSQL) or the write lock (SQLite) until the first
commits, then answers its stored answer; a request that fails rolls its claim back with its
writes. Why a table and not the cache: `neurons.models.IdempotentRequest`.
"""

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from microscope_site.api_errors import IDEMPOTENT_MARK
from neurons.models import IdempotentRequest

HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as a header carries it


class IdempotencyKeyReused(exceptions.APIException):
    status_code = 422
    default_code = "idempotency_key_reused"
    default_detail = (
        "This Idempotency-Key was used for a different request (method, path or body); "
        "use a new key for a new request."
    )


class _Refused(Exception):  # noqa: N818 (how a refused answer leaves the transaction)
    def __init__(self, response: Response) -> None:
        self.response = response


def fingerprint(request: Request) -> str:
    data = request.data
    if hasattr(data, "lists"):  # a form: every value of every field
        data = {name: values for name, values in data.lists()}
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    raw = f"{request.method} {request.path}\n{body}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _replay(earlier: IdempotentRequest, print_: str) -> Response:
    if earlier.fingerprint != print_:
        raise IdempotencyKeyReused()
    headers = {"Idempotent-Replayed": "true"}
    if earlier.location:
        headers["Location"] = earlier.location
    return Response(earlier.body, status=earlier.status, headers=headers)


def idempotent(method: Callable[..., Response]) -> Callable[..., Response]:
    """Decorates a DRF view's create (or post) method; the schema documents the header and
    the 422 of every method so marked (`microscope_site.api_errors.ApiAutoSchema`)."""

    @functools.wraps(method)
    def answer(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return method(view, request, *args, **kwargs)
        if not _KEY.fullmatch(key):
            raise exceptions.ValidationError({HEADER: ["is 1 to 255 visible ASCII characters"]})
        print_ = fingerprint(request)
        user = request.user
        cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_S)
        try:
            with transaction.atomic():
                IdempotentRequest.objects.filter(user=user, created__lt=cutoff).delete()
                try:
                    with transaction.atomic():
                        claim = IdempotentRequest.objects.create(
                            user=user, key=key, fingerprint=print_, status=0, body={}
                        )
                except IntegrityError:
                    # Sent before: a concurrent first request has committed by now.
                    return _replay(IdempotentRequest.objects.get(user=user, key=key), print_)
                response = method(view, request, *args, **kwargs)
                if not 200 <= response.status_code < 300:
                    raise _Refused(response)  # rolls the claim back with anything written
                claim.status = response.status_code
                claim.body = json.loads(JSONRenderer().render(response.data) or b"null")
                claim.location = str(response.get("Location", ""))
                claim.save(update_fields=["status", "body", "location"])
                return response
        except _Refused as refused:
            return refused.response

    setattr(answer, IDEMPOTENT_MARK, True)
    return answer


def idempotency_keys_purge() -> int:
    """Deletes every key older than its lifetime (each keyed write also drops its own user's;
    this, on the beat schedule, drops those of users who stopped writing)."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_S)
    deleted, _ = IdempotentRequest.objects.filter(created__lt=cutoff).delete()
    return deleted

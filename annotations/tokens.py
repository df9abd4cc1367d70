"""Personal API tokens: made, listed and revoked by their owner; checked on every API request.

A token's secret (`msc_<prefix>_<random>`) is shown once, when it is made; only its sha256 is
stored. The prefix, which is not secret, finds the row. A read-scope token can never write,
whatever view it reaches: the check is here, not in each view's permissions.
"""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from annotations.bidi import strip_bidi
from annotations.models import ApiToken
from microscope_site.errors import Refused
from microscope_site.rows import JoinedSelect

KEYWORD = "Token"
SECRET_PREFIX = "msc_"
PREFIX_LENGTH = 8
MAX_TOKENS_PER_USER = 50
LAST_USED_EVERY = timedelta(minutes=1)  # at most one write per token per minute
# Every request with a token reads it, a cached answer's too: SQL built once (`JoinedSelect`).
_TOKEN_WITH_USER = JoinedSelect(ApiToken, "user")


class TokenRefused(Refused):
    """A token request that cannot be taken; the message says why."""


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(
    *, user: Any, name: str, scope: str = ApiToken.Scope.READ, expires: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token and its secret: the only time the secret exists outside the caller."""
    name = strip_bidi(name).strip()
    if not name:
        raise TokenRefused("a token needs a name")
    if scope not in ApiToken.Scope.values:
        raise TokenRefused(f"scope is one of {', '.join(ApiToken.Scope.values)}")
    if expires is not None and expires <= timezone.now():
        raise TokenRefused("the expiry is in the past")
    if tokens_of(user).filter(revoked__isnull=True).count() >= MAX_TOKENS_PER_USER:
        raise TokenRefused(f"at most {MAX_TOKENS_PER_USER} live tokens; revoke one first")
    while True:
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        if not ApiToken.objects.filter(prefix=prefix).exists():
            break
    secret = f"{SECRET_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        scope=scope,
        prefix=prefix,
        secret_sha256=secret_hash(secret),
        expires=expires,
    )
    return token, secret


def tokens_of(user: Any) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user_id=user.pk)


def token_revoke(*, token: ApiToken, user: Any) -> ApiToken:
    if token.user_id != user.pk:
        raise TokenRefused("only its owner may revoke a token")
    if token.revoked is None:
        token.revoked = timezone.now()
        token.save(update_fields=["revoked"])
    return token


def token_check(secret: str) -> ApiToken | None:
    """The live token this secret belongs to, or None (unknown, wrong, expired or revoked)."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    prefix = secret[len(SECRET_PREFIX) : len(SECRET_PREFIX) + PREFIX_LENGTH]
    found = _TOKEN_WITH_USER.fetch("root.prefix = %s", [prefix])
    token = found[0] if found else None
    if token is None or not hmac.compare_digest(token.secret_sha256, secret_hash(secret)):
        return None
    now = timezone.now()
    if token.revoked is not None or (token.expires is not None and token.expires <= now):
        return None
    if not token.user.is_active:
        return None
    if token.last_used is None or token.last_used < now - LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used__isnull=True) | Q(last_used__lt=now - LAST_USED_EVERY)
        ).update(last_used=now)
        token.last_used = now
    return token


class TokenAuthentication(BaseAuthentication):
    """`Authorization: Token <secret>`. Unknown, expired and revoked tokens get 401; a
    read-scope token asking to write gets 403."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("write the header as `Token <secret>`")
        try:
            secret = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("the token is not valid") from None
        token = token_check(secret)
        if token is None:
            raise exceptions.AuthenticationFailed("the token is unknown, expired or revoked")
        if request.method not in SAFE_METHODS and token.scope != ApiToken.Scope.WRITE:
            raise exceptions.PermissionDenied("this token has read scope: it cannot write")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class ApiThrottle(SimpleRateThrottle):
    """One budget per token, per signed-in user (session) and per anonymous address, with the
    rates `token`, `user` and `anon` of REST_FRAMEWORK's DEFAULT_THROTTLE_RATES, read on each
    request so a changed setting takes effect at once."""

    def __init__(self) -> None:
        # Not SimpleRateThrottle's: the scope and rate depend on who asks (allow_request).
        self.rate: str | None = None
        self._key = ""

    def allow_request(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiToken):
            self.scope, ident = "token", str(request.auth.pk)
        elif request.user and request.user.is_authenticated:
            self.scope, ident = "user", str(request.user.pk)
        else:
            self.scope, ident = "anon", str(self.get_ident(request))
        self.rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self._key = self.cache_format % {"scope": self.scope, "ident": ident}
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self._key

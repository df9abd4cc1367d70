"""What a list's query string may say, and how a list is paged: strictly.

- A query parameter the endpoint does not know is a 400 naming it and the ones it knows
  (`StrictQueryParams`); before, `/renders/?unit__in=1,2` answered the whole table.
- `ordering` names one of the endpoint's `ordering_fields`, or it is a 400 (`StrictOrdering`).
- Ids and other integers are bounded to what the database stores (`IdFilter`,
  `IntegerFilter`): 10**25 is a 400, not an `OverflowError` in SQLite's driver; booleans are
  `true` or `false` (`BooleanFilter`), not "anything else means no filter".
- Every ordering ends with `pk`, and the cursor holds the whole key (`KeysetCursorPagination`):
  DRF's cursor keeps only the first field plus an offset it caps at 1,000, so a list with more
  ties than that (`/tuning-curves/?ordering=family`) repeated one page forever.
"""

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from django import forms
from django.db.models import Model, Q, QuerySet
from django_filters import rest_framework as filters
from rest_framework import exceptions
from rest_framework.filters import BaseFilterBackend, OrderingFilter
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.utils.urls import remove_query_param, replace_query_param

# What SQLite and PostgreSQL store in a bigint (ids) and an integer (indices, orders).
BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


class _BoundedIntegerField(forms.IntegerField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", INT_MAX)
        super().__init__(*args, **kwargs)


class _IdField(_BoundedIntegerField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(*args, **kwargs)


class IdFilter(filters.NumberFilter):
    """A row's id (its own or a foreign key's): 1 … 2**63-1, else a 400."""

    field_class = _IdField


class IntegerFilter(filters.NumberFilter):
    """A non-negative integer column (an index, an order): 0 … 2**31-1, else a 400."""

    field_class = _BoundedIntegerField


class _StrictBooleanField(forms.CharField):
    TRUE, FALSE = ("true", "1"), ("false", "0")

    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]
        text = str(super().to_python(value)).strip().lower()
        if text == "":
            return None
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise forms.ValidationError("is true or false", code="invalid")


class BooleanFilter(filters.BooleanFilter):
    """`true`/`false` (or 1/0); anything else is a 400, not a silently ignored filter."""

    field_class = _StrictBooleanField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not django-filter's BooleanWidget: it turns "maybe" into "no filter" before the
        # field can refuse it.
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


class StrictFilterSet(filters.FilterSet):
    """Filters generated from `Meta.fields` get the bounded integer filters too."""

    @classmethod
    def filter_for_lookup(cls, field: Any, lookup_type: str) -> tuple[Any, dict[str, Any]]:
        from django.db import models

        if isinstance(field, models.ForeignKey | models.AutoField | models.BigAutoField):
            return IdFilter, {}
        if isinstance(field, models.IntegerField):
            return IntegerFilter, {}
        if isinstance(field, models.BooleanField):
            return BooleanFilter, {}
        return super().filter_for_lookup(field, lookup_type)  # type: ignore[no-any-return]


class StrictFilterBackend(filters.DjangoFilterBackend):
    """django-filter's backend; filtersets made from a view's `filterset_fields` are strict."""

    filterset_base = StrictFilterSet


# --- which parameters an endpoint knows ------------------------------------------------------


def known_query_params(view: Any, queryset: QuerySet[Any] | None = None) -> list[str]:
    """Every query parameter this view reads: its filters, `ordering`, the cursor, `format`,
    and what it declares itself (`extra_query_params`)."""
    names: list[str] = list(getattr(view, "extra_query_params", ()))
    backends = [backend() for backend in getattr(view, "filter_backends", ())]
    for backend in backends:
        if isinstance(backend, filters.DjangoFilterBackend):
            rows = queryset if queryset is not None else getattr(view, "queryset", None)
            filterset_class = backend.get_filterset_class(view, rows)
            if filterset_class is not None:
                names += list(filterset_class.base_filters)
        elif isinstance(backend, OrderingFilter):
            names.append(backend.ordering_param)
    paginator = getattr(view, "paginator", None)
    if paginator is not None:
        for attribute in ("cursor_query_param", "page_query_param", "page_size_query_param"):
            name = getattr(paginator, attribute, None)
            if name:
                names.append(name)
    if api_settings.URL_FORMAT_OVERRIDE:
        names.append(api_settings.URL_FORMAT_OVERRIDE)
    return sorted(set(names))


def refuse_unknown_query_params(
    request: Request, view: Any, queryset: QuerySet[Any] | None = None
) -> None:
    """A 400 naming each query parameter the view does not read, and those it does. Views
    that filter call it through `StrictQueryParams`; the others call it themselves."""
    known = known_query_params(view, queryset)
    unknown = sorted(name for name in request.query_params if name not in known)
    if unknown:
        allowed = ", ".join(known) or "none"
        raise exceptions.ValidationError(
            {name: [f"unknown query parameter; this endpoint knows: {allowed}"] for name in unknown}
        )


class StrictQueryParams(BaseFilterBackend):
    """First of the filter backends: refuses a query parameter the endpoint does not know."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        refuse_unknown_query_params(request, view, queryset)
        return queryset


class StrictOrdering(OrderingFilter):
    """`ordering` is one or more of the view's `ordering_fields` (`-` for descending)."""

    def remove_invalid_fields(
        self, queryset: QuerySet[Any], fields: list[str], view: Any, request: Request
    ) -> list[str]:
        valid = [
            name for name, _label in self.get_valid_fields(queryset, view, {"request": request})
        ]
        wrong = [field for field in fields if field.lstrip("-") not in valid]
        if wrong:
            allowed = ", ".join(sorted(valid))
            raise exceptions.ValidationError(
                {self.ordering_param: [f"unknown field {', '.join(wrong)}; one of: {allowed}"]}
            )
        return fields

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        fields = list(getattr(view, "ordering_fields", None) or [])
        for parameter in parameters:
            parameter["description"] = (
                f"Sort by {', '.join(fields)} (prefix - for descending; comma-separate several)."
            )
        return parameters


# --- keyset pagination -----------------------------------------------------------------------


def _value(row: Model, field: str) -> Any:
    value = getattr(row, "pk" if field == "pk" else field)
    return value.isoformat() if isinstance(value, datetime) else value


def _after(ordering: list[str], values: list[Any]) -> Q:
    """Rows strictly after `values` in `ordering` (lexicographic over the whole key)."""
    condition = Q(pk__in=[])
    equal = Q()
    for field, value in zip(ordering, values, strict=True):
        name = field.lstrip("-")
        lookup = "lt" if field.startswith("-") else "gt"
        condition |= equal & Q(**{f"{name}__{lookup}": value})
        equal &= Q(**{name: value})
    return condition


def _reversed(ordering: list[str]) -> list[str]:
    return [field[1:] if field.startswith("-") else f"-{field}" for field in ordering]


class KeysetCursorPagination(CursorPagination):
    """Cursor pagination over the whole ordering key, which always ends with `pk`: a page
    starts strictly after the last row of the one before, so a walk visits each row once and
    ends, however many rows tie on the first field. The cursor is opaque (base64 JSON);
    a malformed one is a 404, as DRF's. `page_size` is 1 … `max_page_size`, else a 400."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return int(self.page_size)
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"is a whole number from 1 to {self.max_page_size}"]}
            )
        return int(raw)

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> tuple[str, ...]:
        ordering = list(super().get_ordering(request, queryset, view))
        if not any(field.lstrip("-") in ("pk", "id") for field in ordering):
            ordering.append("-pk" if ordering and ordering[0].startswith("-") else "pk")
        return tuple(ordering)

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        self.request = request
        self.page_size = self.get_page_size(request)
        if not self.page_size:
            return None
        self.base_url = request.build_absolute_uri()
        self.key_ordering = self.get_ordering(request, queryset, view)
        backwards, values = self._decode(request)
        ordering = _reversed(list(self.key_ordering)) if backwards else list(self.key_ordering)
        rows = queryset.order_by(*ordering)
        if values is not None:
            rows = rows.filter(_after(ordering, values))
        page = list(rows[: self.page_size + 1])
        more = len(page) > self.page_size
        page = page[: self.page_size]
        if backwards:
            page.reverse()
        self.page = page
        self._first = self._key(page[0]) if page else values
        self._last = self._key(page[-1]) if page else values
        self.has_next = more if not backwards else values is not None
        self.has_previous = more if backwards else values is not None
        return page

    def _key(self, row: Model) -> list[Any]:
        return [_value(row, field.lstrip("-")) for field in self.key_ordering]

    def _decode(self, request: Request) -> tuple[bool, list[Any] | None]:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return False, None
        try:
            data = json.loads(base64.urlsafe_b64decode(encoded.encode("ascii")))
            backwards, values = bool(data["r"]), data["v"]
            ok = isinstance(values, list) and len(values) == len(self.key_ordering)
        except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
            ok = False
        if not ok or not all(isinstance(v, str | int | float) for v in values):
            raise exceptions.NotFound(self.invalid_cursor_message)
        return backwards, values

    def _link(self, backwards: bool, values: list[Any] | None) -> str | None:
        if values is None:
            return remove_query_param(self.base_url, self.cursor_query_param)
        raw = json.dumps({"r": int(backwards), "v": values}, separators=(",", ":"))
        cursor = base64.urlsafe_b64encode(raw.encode()).decode("ascii")
        return str(replace_query_param(self.base_url, self.cursor_query_param, cursor))

    def get_next_link(self) -> str | None:  # type: ignore[override]
        return self._link(False, self._last) if self.has_next else None

    def get_previous_link(self) -> str | None:  # type: ignore[override]
        return self._link(True, self._first) if self.has_previous else None

    def get_html_context(self) -> dict[str, Any]:
        return {"previous_url": self.get_previous_link(), "next_url": self.get_next_link()}

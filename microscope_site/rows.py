"""Small reads shared by every app: by a unique key through the ORM, and plain SQL where the
ORM costs more to build a query than the database takes to answer it (a page's hot path)."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from django.db import connection
from django.db.models import Field, ForeignKey, Model, QuerySet

_Row = TypeVar("_Row", bound=Model)


def unique_or_none(rows: QuerySet[_Row]) -> _Row | None:
    """The row a filter on a unique key finds, or None: what `first()` answers, without the
    ORDER BY it adds (building that costs ~0.5 ms of CPU on every call)."""
    found = list(rows.order_by()[:1])
    return found[0] if found else None


def sql_rows(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Every row `sql` answers, as tuples."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def sql_row(sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    """The first row `sql` answers, or None."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row


class JoinedSelect(Generic[_Row]):
    """Rows of `model` with the rows its foreign keys reach (`related`: paths such as
    `"layer__model"`), as `select_related` gives them, from SQL built once per process.

    The ORM builds a query's SQL anew on every call: for a unit with its layer and model that
    is ~1.7 ms of CPU against ~0.4 ms for the database to answer it, and a unit page built
    afresh asks several. Here the SELECT and its joins are written once from the models'
    fields; the caller adds a WHERE (and ORDER BY, LIMIT) over the aliases, `root` for `model`
    and each path with `__` as `_` (`layer_model`; quote one that is an SQL keyword: `"user"`).
    Values pass through the converters the ORM applies (JSON, SQLite's dates), and objects are
    made with `Model.from_db`. Parameters go to the database as given: where the ORM answers no
    rows for an integer past 64 bits, SQL refuses it, so a caller checks a number it did not
    read from the database."""

    def __init__(self, model: type[_Row], *related: str) -> None:
        self.model = model
        self.related = related
        self._built: tuple[str, list[_Joined]] | None = None

    def _build(self) -> tuple[str, list["_Joined"]]:
        if self._built is not None:
            return self._built
        quote = connection.ops.quote_name
        joined = [_Joined.of(self.model, "root", None, None, nullable=False)]
        by_path = {"": joined[0]}
        joins: list[str] = []
        paths = sorted({p for path in self.related for p in _prefixes(path)}, key=len)
        for path in paths:
            parent_path, _, name = path.rpartition("__")
            parent = by_path[parent_path]
            field = parent.model._meta.get_field(name)
            if not isinstance(field, ForeignKey):
                raise ValueError(f"{parent.model.__name__}.{name} is not a foreign key")
            nullable = parent.nullable or field.null
            alias = path.replace("__", "_")
            target = cast(type[Model], field.related_model)
            found = _Joined.of(target, alias, parent, field, nullable=nullable)
            joins.append(
                f"{'LEFT' if nullable else 'INNER'} JOIN {quote(target._meta.db_table)}"
                f" {quote(alias)} ON {quote(alias)}.{quote(_column(field.target_field))}"
                f" = {quote(parent.alias)}.{quote(_column(field))}"
            )
            joined.append(found)
            by_path[path] = found
        columns = ", ".join(
            f"{quote(part.alias)}.{quote(_column(f))}" for part in joined for f in part.fields
        )
        sql = (
            f"SELECT {columns} FROM {quote(self.model._meta.db_table)} {quote('root')} "
            + " ".join(joins)
        )
        self._built = (sql, joined)
        return self._built

    def fetch(
        self, where: str, params: Sequence[Any] = (), order_by: str = "", limit: int | None = None
    ) -> list[_Row]:
        """The rows matching `where` (SQL over the aliases), each with its related objects."""
        sql, joined = self._build()
        sql += f" WHERE {where}" + (f" ORDER BY {order_by}" if order_by else "")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        found: list[_Row] = []
        for row in sql_rows(sql, params):
            objects: dict[str, Model | None] = {}
            start = 0
            for part in joined:
                values = list(row[start : start + len(part.fields)])
                start += len(part.fields)
                objects[part.alias] = part.make(values)
                if part.parent is not None and part.field is not None:
                    owner = objects[part.parent.alias]
                    if owner is not None:
                        setattr(owner, part.field.name, objects[part.alias])
            found.append(cast(_Row, objects["root"]))
        return found


def _column(field: Field) -> str:
    if field.column is None:
        raise ValueError(f"{field} has no column")
    return field.column


def _prefixes(path: str) -> list[str]:
    """ "a__b__c" → ["a", "a__b", "a__b__c"]."""
    names = path.split("__")
    return ["__".join(names[: i + 1]) for i in range(len(names))]


@dataclass
class _Joined:
    """One model in a JoinedSelect: its alias, its fields in column order and their
    converters, and the foreign key that reaches it."""

    model: type[Model]
    alias: str
    parent: "_Joined | None"
    field: ForeignKey | None
    nullable: bool
    fields: list[Field]
    attnames: list[str]
    converters: list[tuple[int, list[Any], Any]]
    pk_position: int

    @classmethod
    def of(
        cls,
        model: type[Model],
        alias: str,
        parent: "_Joined | None",
        field: ForeignKey | None,
        *,
        nullable: bool,
    ) -> "_Joined":
        fields = list(model._meta.concrete_fields)
        converters = []
        for position, f in enumerate(fields):
            column = f.get_col(alias)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                converters.append((position, found, column))
        attnames = [f.attname for f in fields]
        pk_position = attnames.index(model._meta.pk.attname)
        return cls(model, alias, parent, field, nullable, fields, attnames, converters, pk_position)

    def make(self, values: list[Any]) -> Model | None:
        if self.nullable and values[self.pk_position] is None:
            return None  # a LEFT JOIN that found nothing
        for position, converters, column in self.converters:
            value = values[position]
            for convert in converters:
                value = convert(value, column, connection)
            values[position] = value
        return self.model.from_db(connection.alias, self.attnames, values)

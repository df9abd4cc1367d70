"""`JoinedSelect`: the same objects `select_related` gives, from SQL built once."""

from typing import Any

import pytest
from django.db.models import Model

from microscope_site.rows import JoinedSelect
from neurons import selectors
from neurons.models import Technique, Unit
from rendering.models import Render

pytestmark = pytest.mark.django_db


def _values(row: Model) -> dict[str, Any]:
    return {f.attname: getattr(row, f.attname) for f in type(row)._meta.concrete_fields}


def _render(layer: Any, unit: Any, name: str) -> Render:
    return Render.objects.create(
        unit=unit,
        layer=layer,
        technique=Technique.objects.get(slug="channel"),
        params={"steps": 2, "size": 64},
        params_hash=name * 64,
        image=f"renders/{name}.png",
        thumbnail=f"renders/{name}-96.png",
        image_sha256="0" * 64,
        objective=1.5,
        metrics={"device": "cpu"},
    )


def test_a_unit_comes_with_its_layer_and_model_as_the_orm_gives_them(unit: Any) -> None:
    found = selectors.unit_by_id(unit.pk)
    orm = Unit.objects.select_related("layer__model").get(pk=unit.pk)
    assert _values(found) == _values(orm)
    assert _values(found.layer) == _values(orm.layer)
    assert _values(found.layer.model) == _values(orm.layer.model)
    # Converted as the ORM converts them: JSON to lists and dicts, dates to aware datetimes
    # (SQLite stores both as text).
    assert found.layer.output_shape == [512, 14, 14]
    assert isinstance(found.layer.model.preprocessing, dict)
    assert found.layer.model.created == orm.layer.model.created
    assert found.layer.model.created.tzinfo is not None
    assert found._state.adding is False and found._state.db == "default"


def test_reading_the_related_objects_asks_no_more_queries(
    unit: Any, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):
        found = selectors.unit_by_id(unit.pk)
        assert found.layer.model.slug == "inceptionv1"
        assert found.get_absolute_url() == "/models/inceptionv1/mixed4c/447/"


def test_a_unit_that_does_not_exist_raises_does_not_exist(db: None) -> None:
    with pytest.raises(Unit.DoesNotExist):
        selectors.unit_by_id(10**9)


def test_a_nullable_foreign_key_with_no_row_gives_none(unit: Any) -> None:
    of_unit = _render(unit.layer, unit, "a")
    of_layer = _render(unit.layer, None, "b")
    renders = JoinedSelect(Render, "unit__layer", "technique").fetch(
        "root.layer_id = %s", [unit.layer_id], order_by="root.id"
    )
    assert [r.pk for r in renders] == [of_unit.pk, of_layer.pk]
    assert renders[0].unit is not None and renders[0].unit.pk == unit.pk
    assert renders[0].unit.layer.name == "mixed4c"
    assert renders[0].params == {"steps": 2, "size": 64}
    assert renders[0].image.url.endswith("renders/a.png")
    assert renders[1].unit is None and renders[1].unit_id is None
    assert renders[1].technique.slug == "channel"


def test_a_path_that_is_not_a_foreign_key_is_refused(db: None) -> None:
    with pytest.raises(ValueError, match="Unit.index is not a foreign key"):
        JoinedSelect(Unit, "index").fetch("root.id = %s", [1])

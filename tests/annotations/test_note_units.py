"""A note's units and edges as written: parsing, labels, the edit form's text, sign warnings."""

from typing import Any

import pytest

from annotations.errors import AnnotationRefused
from annotations.note_units import (
    MAX_UNITS,
    EdgeSpec,
    UnitRef,
    connection_strength,
    edge_sign_warnings,
    edges_parse,
    edges_text,
    model_of,
    unit_label,
    units_parse,
    units_text,
)

pytestmark = pytest.mark.django_db


def _store_connection(inceptionv1: Any, strengths: list[float]) -> tuple[Any, Any, Any]:
    """mixed4b units 7 and 3 into mixed4c:447 with `strengths`; returns (4b:7, 4b:3, 4c:447)."""
    from rendering.models import Connection, LayerConnection

    mixed4b = inceptionv1.layers.get(name="mixed4b")
    mixed4c = inceptionv1.layers.get(name="mixed4c")
    pair = LayerConnection.objects.create(
        source=mixed4b, target=mixed4c, method="direct", kernel_size=1, matrix="m.npy"
    )
    target = mixed4c.units.get(index=447)
    Connection.objects.create(
        unit=target,
        direction="in",
        pair=pair,
        other_indices=[7, 3],
        strengths=strengths,
        kernels=b"",
    )
    return mixed4b.units.get(index=7), mixed4b.units.get(index=3), target


def test_edge_strength_comes_from_stored_connections(make_note: Any, inceptionv1: Any) -> None:
    _store_connection(inceptionv1, [0.9, -0.25])
    note = make_note(units="inceptionv1/mixed4b/3\ninceptionv1 4c:447", edges="1 -| 2\n2 -> 1 0.5")
    edges = list(note.edges.order_by("pk"))
    assert edges[0].strength == pytest.approx(-0.25)
    assert edges[1].strength == pytest.approx(0.5)


def test_a_unit_is_labelled_by_model_version_layer_and_index(unit: Any, inceptionv1: Any) -> None:
    assert unit_label(unit) == f"inceptionv1@{inceptionv1.version}/mixed4c/447"


def test_units_are_parsed_one_a_line_with_roles_and_each_must_exist(unit: Any) -> None:
    refs = units_parse("inceptionv1 4c:447, input\n\n  inceptionv1/mixed4c/448  ")
    assert [(r.unit.layer.name, r.unit.index, r.role) for r in refs] == [
        ("mixed4c", 447, "input"),
        ("mixed4c", 448, ""),
    ]
    for text, message in (
        ("inceptionv1 4c:99999", "line 1: no unit"),
        ("inceptionv1 4c:447\ninceptionv1/mixed4c/447", "line 2: .* is listed twice"),
        ("inceptionv1 4c:447, " + "r" * 41, "at most 40 characters"),
        ("\n".join(f"inceptionv1 4c:{i}" for i in range(MAX_UNITS + 1)), "at most 40 units"),
    ):
        with pytest.raises(AnnotationRefused, match=message) as refused:
            units_parse(text)
        assert refused.value.field == "units"


def test_edges_name_units_by_their_line_and_take_a_strength(unit: Any) -> None:
    refs = units_parse("inceptionv1 4c:447\ninceptionv1 4c:448")
    edges = edges_parse("1 -> 2\n\n2 -| 1 -0.5", refs)
    assert [(e.source.index, e.target.index, e.kind, e.strength) for e in edges] == [
        (447, 448, "excitatory", None),  # no stored connection between them
        (448, 447, "inhibitory", -0.5),
    ]
    for text, message in (
        ("1 => 2", "line 1: write `1 -> 2`"),
        ("1 -> 3", "there is no unit 3"),
        ("2 -| 2", "an edge joins two units"),
    ):
        with pytest.raises(AnnotationRefused, match=message) as refused:
            edges_parse(text, refs)
        assert refused.value.field == "edges"


def test_a_stored_connection_is_read_from_either_end(inceptionv1: Any) -> None:
    seven, three, target = _store_connection(inceptionv1, [0.9, -0.25])
    assert connection_strength(seven, target) == pytest.approx(0.9)
    assert connection_strength(three, target) == pytest.approx(-0.25)
    assert connection_strength(target, seven) is None  # the other direction is not stored
    assert (
        connection_strength(inceptionv1.layers.get(name="mixed4b").units.get(index=0), target)
        is None
    )


def test_an_edge_drawn_against_its_stored_sign_is_warned_about(
    make_note: Any, inceptionv1: Any
) -> None:
    _store_connection(inceptionv1, [0.9, -0.25])
    note = make_note(
        units="inceptionv1/mixed4b/7\ninceptionv1/mixed4b/3\ninceptionv1 4c:447",
        edges="1 -> 3\n2 -> 3 0.5\n1 -| 2 0.2",
    )
    warnings = edge_sign_warnings(note)
    assert warnings == [
        "mixed4b:3 excites mixed4c:447 as written, but the stored connection is -0.250 "
        "(inhibitory): check the sign",
        "mixed4b:7 inhibits mixed4b:3 as written, but the strength given is +0.200 "
        "(excitatory): check the sign",
    ]


def test_the_written_text_comes_back_from_the_parsed_units_and_edges(
    unit: Any, inceptionv1: Any
) -> None:
    refs = units_parse("inceptionv1 4c:447, input\ninceptionv1 4c:448")
    edges = edges_parse("2 -| 1 0.25\n1 -> 2", refs)
    label = f"inceptionv1@{inceptionv1.version}/mixed4c"
    assert units_text(refs) == f"{label}/447, input\n{label}/448"
    assert edges_text(edges, refs) == "2 -| 1 0.25\n1 -> 2"
    assert model_of(refs) == inceptionv1 and model_of([]) is None
    assert isinstance(refs[0], UnitRef) and isinstance(edges[0], EdgeSpec)

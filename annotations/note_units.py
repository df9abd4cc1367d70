"""The units and edges of a note as its author writes them: parsing, labels, the text its
edit form shows, and where a drawn edge's sign contradicts the stored connection.
"""

import re
from dataclasses import dataclass

from annotations.errors import AnnotationRefused
from annotations.models import Note, NoteEdge
from neurons.models import NetworkModel, Unit
from neurons.selectors import unit_by_shorthand
from rendering.models import Connection

MAX_UNITS = 40
MAX_EDGES = 100


@dataclass(frozen=True)
class UnitRef:
    unit: Unit
    role: str


@dataclass(frozen=True)
class EdgeSpec:
    source: Unit
    target: Unit
    kind: str
    strength: float | None


_EDGE = re.compile(
    r"(?P<source>\d+)\s*(?P<arrow>->|-\|)\s*(?P<target>\d+)(?:\s+(?P<strength>-?\d+(?:\.\d+)?))?"
)


def unit_label(unit: Unit) -> str:
    model = unit.layer.model
    return f"{model.slug}@{model.version}/{unit.layer.name}/{unit.index}"


def units_parse(text: str) -> list[UnitRef]:
    """One unit per line, `model[@version]/layer/index` or a shorthand such as
    `inceptionv1 4c:447`, optionally followed by `, role`. Every unit must exist."""
    refs: list[UnitRef] = []
    seen: set[int] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        raw, _, role = line.partition(",")
        raw, role = raw.strip(), role.strip()
        if not raw:
            continue
        if len(role) > 40:
            raise AnnotationRefused(
                f"line {number}: a role has at most 40 characters", field="units"
            )
        unit = unit_by_shorthand(raw)
        if unit is None:
            raise AnnotationRefused(
                f"line {number}: no unit {raw!r} (write model/layer/index, e.g. "
                "inceptionv1/mixed4c/447, or a shorthand such as inceptionv1 4c:447)",
                field="units",
            )
        if unit.pk in seen:
            raise AnnotationRefused(f"line {number}: {raw!r} is listed twice", field="units")
        seen.add(unit.pk)
        refs.append(UnitRef(unit=unit, role=role))
    if len(refs) > MAX_UNITS:
        raise AnnotationRefused(f"at most {MAX_UNITS} units per note", field="units")
    return refs


def connection_strength(source: Unit, target: Unit) -> float | None:
    """The stored weight from `source` into `target`, when the connections have it."""
    for unit, direction, other, layer_field in (
        (target, Connection.Direction.IN, source, "pair__source"),
        (source, Connection.Direction.OUT, target, "pair__target"),
    ):
        row = Connection.objects.filter(
            unit=unit, direction=direction, **{layer_field: other.layer}
        ).first()
        if row is not None and other.index in row.other_indices:
            return float(row.strengths[row.other_indices.index(other.index)])
    return None


def edge_sign_warnings(note: Note) -> list[str]:
    """The note's edges whose declared sign contradicts the stored connection between their
    units (or, where none is stored, the strength written after them): "excites" drawn with
    a negative weight says the opposite of what the numbers say."""
    warnings = []
    for edge in note.edges.select_related("source__layer", "target__layer"):
        stored = connection_strength(edge.source, edge.target)
        value, where = stored, "the stored connection"
        if stored is None:
            value, where = edge.strength, "the strength given"
        if not value:
            continue
        excites = edge.kind == NoteEdge.Kind.EXCITATORY
        if excites == (value > 0):
            continue
        source = f"{edge.source.layer.name}:{edge.source.index}"
        target = f"{edge.target.layer.name}:{edge.target.index}"
        warnings.append(
            f"{source} {'excites' if excites else 'inhibits'} {target} as written, but "
            f"{where} is {value:+.3f} ({'inhibitory' if value < 0 else 'excitatory'}): "
            "check the sign"
        )
    return warnings


def edges_parse(text: str, refs: list[UnitRef]) -> list[EdgeSpec]:
    """One edge per line between units by their line number in the units list: `1 -> 2`
    excites, `1 -| 2` inhibits; an optional number after it is the strength (otherwise the
    stored connection's, when there is one)."""
    edges: list[EdgeSpec] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _EDGE.fullmatch(line.strip())
        if match is None:
            raise AnnotationRefused(
                f"line {number}: write `1 -> 2` (excites) or `1 -| 2` (inhibits), with an "
                "optional strength after it",
                field="edges",
            )
        ends = []
        for end in ("source", "target"):
            position = int(match[end])
            if not 1 <= position <= len(refs):
                raise AnnotationRefused(
                    f"line {number}: there is no unit {position} (the note lists {len(refs)})",
                    field="edges",
                )
            ends.append(refs[position - 1].unit)
        if ends[0].pk == ends[1].pk:
            raise AnnotationRefused(f"line {number}: an edge joins two units", field="edges")
        strength = float(match["strength"]) if match["strength"] else None
        if strength is None:
            strength = connection_strength(ends[0], ends[1])
        kind = NoteEdge.Kind.EXCITATORY if match["arrow"] == "->" else NoteEdge.Kind.INHIBITORY
        edges.append(EdgeSpec(source=ends[0], target=ends[1], kind=kind, strength=strength))
    if len(edges) > MAX_EDGES:
        raise AnnotationRefused(f"at most {MAX_EDGES} edges per note", field="edges")
    return edges


def model_of(refs: list[UnitRef]) -> NetworkModel | None:
    """The model a note's bare `layer:index` shorthands name: its first unit's."""
    return refs[0].unit.layer.model if refs else None


def units_text(refs: list[UnitRef]) -> str:
    return "\n".join(unit_label(r.unit) + (f", {r.role}" if r.role else "") for r in refs)


def edges_text(edges: list[EdgeSpec], refs: list[UnitRef]) -> str:
    position = {r.unit.pk: i for i, r in enumerate(refs, start=1)}
    lines = []
    for e in edges:
        arrow = "->" if e.kind == NoteEdge.Kind.EXCITATORY else "-|"
        line = f"{position[e.source.pk]} {arrow} {position[e.target.pk]}"
        lines.append(line + (f" {e.strength:g}" if e.strength is not None else ""))
    return "\n".join(lines)

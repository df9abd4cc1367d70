"""A note's circuit as an SVG drawn on the server: one column per layer (in network order),
each unit its feature-visualization thumbnail linking to its page, edges red (excite) or blue
(inhibit, with a flat end), thicker when stronger. Every text and URL goes through
`format_html`, so nothing a note's author writes can become markup."""

from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from annotations.models import NoteEdge, NoteUnit
from rendering.models import Render

NODE = 64
COLUMN = 170
ROW = 104
MARGIN = 24
EXCITE = "#a40000"
INHIBIT = "#0b3fa4"


@dataclass(frozen=True)
class Placed:
    x: int
    y: int
    url: str
    label: str
    role: str
    thumbnail: str | None


def unit_thumbnails(unit_ids: list[int]) -> dict[int, Render]:
    """The newest channel render (first image) of each unit: one query."""
    found: dict[int, Render] = {}
    renders = Render.objects.filter(
        unit_id__in=unit_ids, technique__slug="channel", variant=0
    ).order_by("-created")
    for render in renders:
        assert render.unit_id is not None
        found.setdefault(render.unit_id, render)
    return found


def circuit_svg(note_units: list[NoteUnit], edges: list[NoteEdge]) -> SafeString:
    if not note_units:
        return mark_safe("")
    thumbs = unit_thumbnails([nu.unit_id for nu in note_units])
    columns: dict[tuple[int, int], list[NoteUnit]] = {}
    for nu in note_units:
        layer = nu.unit.layer
        columns.setdefault((layer.model_id, layer.order), []).append(nu)
    placed: dict[int, Placed] = {}
    for column, key in enumerate(sorted(columns)):
        for row, nu in enumerate(columns[key]):
            render = thumbs.get(nu.unit_id)
            placed[nu.unit_id] = Placed(
                x=MARGIN + column * COLUMN,
                y=MARGIN + row * ROW,
                url=nu.unit.get_versioned_url(),
                label=f"{nu.unit.layer.name}:{nu.unit.index}",
                role=nu.role,
                thumbnail=render.thumbnail.url if render is not None else None,
            )
    width = MARGIN * 2 + (len(columns) - 1) * COLUMN + NODE + 60
    height = MARGIN * 2 + (max(len(c) for c in columns.values()) - 1) * ROW + NODE + 32
    strongest = max((abs(e.strength) for e in edges if e.strength is not None), default=0.0)
    lines = []
    for edge in edges:
        a, b = placed.get(edge.source_id), placed.get(edge.target_id)
        if a is None or b is None:
            continue
        excite = edge.kind == NoteEdge.Kind.EXCITATORY
        weight = 1.5
        if edge.strength is not None and strongest > 0:
            weight = 1.0 + 4.0 * abs(edge.strength) / strongest
        x1, y1 = a.x + NODE, a.y + NODE // 2
        x2, y2 = b.x - 4, b.y + NODE // 2
        if b.x <= a.x:  # same or earlier column: leave from the side facing the target
            x1, x2 = a.x + NODE // 2, b.x + NODE // 2
            y1, y2 = a.y + NODE, b.y - 4
        label = "" if edge.strength is None else f"{edge.strength:.3g}"
        lines.append(
            format_html(
                '<g class="edge {}"><title>{} {} {}{}</title>'
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}" '
                'marker-end="url(#{})"/>'
                '<text x="{}" y="{}" font-size="11" fill="{}" text-anchor="middle">{}</text></g>',
                edge.kind,
                a.label,
                "excites" if excite else "inhibits",
                b.label,
                f" ({label})" if label else "",
                x1,
                y1,
                x2,
                y2,
                EXCITE if excite else INHIBIT,
                f"{weight:.2f}",
                "arrow" if excite else "bar",
                (x1 + x2) // 2,
                (y1 + y2) // 2 - 4,
                EXCITE if excite else INHIBIT,
                label,
            )
        )
    nodes = format_html_join(
        "",
        '<a href="{}" class="node"><title>{}{}</title>{}'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>'
        '<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>'
        '<text x="{}" y="{}" font-size="11" fill="#555" text-anchor="middle">{}</text></a>',
        (
            (
                p.url,
                p.label,
                f" ({p.role})" if p.role else "",
                format_html(
                    '<image href="{}" x="{}" y="{}" width="{}" height="{}"/>',
                    p.thumbnail,
                    p.x,
                    p.y,
                    NODE,
                    NODE,
                )
                if p.thumbnail
                else format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="#eee"/>', p.x, p.y, NODE, NODE
                ),
                p.x,
                p.y,
                NODE,
                NODE,
                p.x + NODE // 2,
                p.y + NODE + 14,
                p.label,
                p.x + NODE // 2,
                p.y + NODE + 27,
                p.role,
            )
            for p in placed.values()
        ),
    )
    defs = format_html(
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{}"/>'
        '</marker><marker id="bar" viewBox="0 0 4 12" refX="2" refY="6" markerWidth="4" '
        'markerHeight="12" orient="auto"><rect width="4" height="12" fill="{}"/></marker></defs>',
        EXCITE,
        INHIBIT,
    )
    return format_html(
        '<svg class="circuit" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" '
        'viewBox="0 0 {} {}" role="img" aria-label="circuit diagram">{}{}{}</svg>',
        width,
        height,
        width,
        height,
        defs,
        mark_safe("".join(lines)),  # noqa: S308  (each line built by format_html)
        nodes,
    )

"""The compare page's tray mode: the units `?units=` names, one column each, with every
technique's renders, the dataset examples and the tuning curves overlaid across columns."""

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from neurons import selectors
from neurons.models import Unit
from neurons.tray import TRAY_MAX, BadTray, tray_keys, tray_units, unit_key
from rendering import selectors as render_selectors
from rendering.plots import DASHES, LINE_COLOURS

TECHNIQUES = ("channel", "neuron", "negative", "diversity")


def tray_url(keys: list[str]) -> str:
    base = reverse("neurons:compare")
    return base + ("?" + urlencode({"units": ",".join(keys)}, safe="@/,") if keys else "")


def _column(unit: Unit, position: int, keys: list[str]) -> dict[str, Any]:
    renders = list(render_selectors.unit_renders(unit))
    by_technique = {
        slug: [r for r in renders if r.technique.slug == slug]
        for slug in unit.layer.grid_techniques
        if slug in TECHNIQUES
    }
    key = unit_key(unit)
    return {
        "unit": unit,
        "key": key,
        "colour": LINE_COLOURS[position % len(LINE_COLOURS)],
        "dash": DASHES[position % len(DASHES)],
        "renders": by_technique,
        "examples": render_selectors.unit_examples(unit),
        "remove_url": tray_url([k for k in keys if k != key]),
    }


def _overlays(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from rendering.compare_plots import overlaid_curve, tuning_overlay_svg

    families: dict[str, list[Any]] = {}
    for column in columns:
        unit = column["unit"]
        label = f"{unit.layer.model.display_name} {unit.layer.name}:{unit.index}"
        for curve in render_selectors.unit_tuning(unit):
            families.setdefault(curve.family, []).append(overlaid_curve(curve, label))
    return [
        {
            "family": family,
            "units": len(curves),
            "svg": tuning_overlay_svg(family, curves[0].axis, curves),
        }
        for family, curves in sorted(families.items())
    ]


def compare_tray(request: HttpRequest) -> HttpResponse:
    """`/models/compare/?units=a,b,c` (`&add=<shorthand>` adds one and redirects)."""
    error, status = "", 200
    try:
        keys = tray_keys(request.GET.getlist("units"))
    except BadTray as bad:
        keys, error, status = [], str(bad), 400
    added = request.GET.get("add", "").strip()
    if added and not error:
        unit = selectors.unit_by_shorthand(added) if "\x00" not in added else None
        if unit is None:
            error, status = f"No unit is called “{added[:80]}”: try inceptionv1 4c:447.", 404
        elif len(keys) >= TRAY_MAX and unit_key(unit) not in keys:
            error, status = f"A tray holds at most {TRAY_MAX} units.", 400
        else:
            return redirect(tray_url([*keys, unit_key(unit)]))
    tray = tray_units(keys)
    if tray.missing and not error:
        error, status = f"No unit at {', '.join(tray.missing)}.", 404
    current = tray.keys
    columns = [_column(unit, i, current) for i, unit in enumerate(tray.units)]
    context = {
        "tray": True,
        "columns": columns,
        "overlays": _overlays(columns),
        "keys": current,
        "share_url": request.build_absolute_uri(tray_url(current)),
        "error": error,
        "tray_max": TRAY_MAX,
        "added": added,
    }
    return render(request, "neurons/compare_tray.html", context, status=status)

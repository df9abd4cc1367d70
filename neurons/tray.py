"""The comparison tray: any units of any models, named in the compare page's URL
(`/models/compare/?units=inceptionv1@<version>/mixed4c/447,alexnet@<version>/fc8/1`), so a
tray is a link that can be shared, bookmarked and cited."""

import re
from dataclasses import dataclass

from neurons import selectors
from neurons.models import Unit

TRAY_MAX = 8
KEY_MAX = 200
_KEY = re.compile(
    r"(?P<model>[A-Za-z0-9][A-Za-z0-9_-]*(?:@[0-9A-Fa-f]{4,16})?)/"
    r"(?P<layer>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<index>\d{1,9})"
)


class BadTray(ValueError):
    """A tray that cannot be shown as asked; the message says why."""


def unit_key(unit: Unit) -> str:
    """`slug@version/layer/index`: the unit of exactly this model version."""
    model = unit.layer.model
    return f"{model.slug}@{model.version}/{unit.layer.name}/{unit.index}"


def tray_keys(raw: list[str]) -> list[str]:
    """The keys of `?units=` (comma-separated, or the parameter repeated), in order, once
    each. Raises `BadTray` for too many or malformed keys."""
    keys: list[str] = []
    for value in raw:
        for key in value.split(","):
            key = key.strip().strip("/")
            if key and key not in keys:
                keys.append(key)
    if len(keys) > TRAY_MAX:
        raise BadTray(f"A tray holds at most {TRAY_MAX} units; this one names {len(keys)}.")
    bad = [key for key in keys if len(key) > KEY_MAX or not _KEY.fullmatch(key)]
    if bad:
        shown = ", ".join(repr(key[:60]) for key in bad)
        raise BadTray(f"Not a unit key (model[@version]/layer/index): {shown}.")
    return keys


@dataclass
class Tray:
    units: list[Unit]
    missing: list[str]

    @property
    def keys(self) -> list[str]:
        return [unit_key(unit) for unit in self.units]


def tray_units(keys: list[str]) -> Tray:
    """The units the keys name (following renames; an unversioned key means the newest
    version), and the keys that name no unit."""
    units: list[Unit] = []
    missing: list[str] = []
    for key in keys:
        match = _KEY.fullmatch(key)
        assert match is not None  # tray_keys checked
        unit = selectors.unit_following_renames(match["model"], match["layer"], int(match["index"]))
        if unit is None:
            missing.append(key)
        elif all(unit.pk != other.pk for other in units):
            units.append(unit)
    return Tray(units, missing)

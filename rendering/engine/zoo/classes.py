"""Class names of a classifier's outputs, from the label lists the model libraries ship.

Each function here makes a `ClassNames` loader for a registry entry: called with a folder of
local label files, it answers one name per output unit, in the order of the logits, or raises
`ClassNamesUnavailable` saying where the names would come from. Nothing is downloaded:
torchvision keeps its categories in the weights' metadata and timm its ImageNet synsets in the
package; the lists that come only with a model's own release (InceptionV1's 1,008 labels,
Places365's categories) are read from a local file.
"""

from collections.abc import Callable
from pathlib import Path

ClassNames = Callable[[Path], tuple[str, ...]]


class ClassNamesUnavailable(Exception):
    """No class names for this classifier here; the message says why and how to add them."""


def torchvision_class_names(name: str) -> ClassNames:
    """torchvision's `weights.meta["categories"]` for model `name` (no download)."""

    def load(_folder: Path) -> tuple[str, ...]:
        import torchvision

        weights = torchvision.models.get_model_weights(name).DEFAULT
        categories = weights.meta.get("categories")
        if not categories:
            raise ClassNamesUnavailable(f"torchvision's {weights} weights list no categories")
        return tuple(str(category) for category in categories)

    return load


def timm_class_names(subset: str = "imagenet-1k") -> ClassNames:
    """timm's ImageNet class descriptions (the first name of each synset's description)."""

    def load(_folder: Path) -> tuple[str, ...]:
        from timm.data import ImageNetInfo

        descriptions = ImageNetInfo(subset).label_descriptions()
        return tuple(str(text).split(",")[0].strip() for text in descriptions)

    return load


def file_class_names(filename: str, *, what: str, count: int) -> ClassNames:
    """One name per line from `filename` in the label folder. Places365's
    `categories_places365.txt` lines (`/a/airfield 0`) become `airfield`; other lines are
    taken as they are. The file must have `count` names."""

    def load(folder: Path) -> tuple[str, ...]:
        path = folder / filename
        if not path.is_file():
            raise ClassNamesUnavailable(
                f"{what} are not on this server: put {filename} (one name per line, {count:,} "
                f"lines) in {folder} and run `python manage.py class_names`"
            )
        names = tuple(
            _category(line) for line in path.read_text(encoding="utf-8").splitlines() if line
        )
        if len(names) != count:
            raise ClassNamesUnavailable(
                f"{path} has {len(names):,} names; {what} are {count:,}, one per output"
            )
        return names

    return load


def _category(line: str) -> str:
    """`/a/airfield 0` → `airfield`; `/b/bus_interior 61` → `bus interior`; `tench` → `tench`."""
    text = line.strip()
    if text.startswith("/") and text.rsplit(" ", 1)[-1].isdigit():
        text = text.rsplit(" ", 1)[0].split("/", 2)[-1].replace("/", " ").replace("_", " ")
    return text

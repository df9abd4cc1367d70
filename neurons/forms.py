from django import forms

from neurons.models import NetworkModel
from rendering.engine.zoo import ENTRIES, UnknownModelError, get_entry

OTHER_TORCHVISION = "torchvision"


def _registry_choices() -> list[tuple[str, str]]:
    return (
        [("", "— choose a model —")]
        + [(key, f"{entry.display_name} ({key})") for key, entry in sorted(ENTRIES.items())]
        + [(OTHER_TORCHVISION, "Any other torchvision classifier (name it below)")]
    )


class ImportModelForm(forms.Form):
    registry_key = forms.ChoiceField(label="Registry entry", choices=_registry_choices)
    torchvision_name = forms.CharField(
        required=False,
        max_length=52,
        help_text="for 'any other torchvision classifier': e.g. convnext_tiny or "
        "torchvision:convnext_tiny; its layers are found automatically",
    )
    # No preselection: a pretrained import downloads weights, so nothing is chosen for staff.
    weights_source = forms.ChoiceField(
        choices=[("", "— choose the weights —"), *NetworkModel.Weights.choices]
    )
    seed = forms.IntegerField(initial=0, help_text="for random init")
    weights_path = forms.CharField(
        required=False, max_length=512, help_text="a state-dict file on the server (for 'file')"
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("weights_source") == NetworkModel.Weights.FILE and not data.get("weights_path"):
            self.add_error("weights_path", "Give the path of a state-dict file on the server.")
        if data.get("registry_key") == OTHER_TORCHVISION:
            name = str(data.get("torchvision_name") or "").strip().removeprefix("torchvision:")
            if not name:
                self.add_error(
                    "torchvision_name", "Name the torchvision model, e.g. convnext_tiny."
                )
                return data
            try:
                data["registry_key"] = get_entry(f"torchvision:{name}").key
            except (UnknownModelError, ValueError) as error:
                self.add_error("torchvision_name", str(error))
        return data


class RenderLayersForm(forms.Form):
    technique = forms.ChoiceField(
        choices=[(t, t) for t in ("channel", "neuron", "negative", "diversity", "deepdream")]
    )
    steps = forms.IntegerField(initial=512, min_value=1, max_value=20000)
    size = forms.IntegerField(initial=224, min_value=16, max_value=1024)
    seed = forms.IntegerField(initial=0, min_value=0)


def import_summary(data: dict[str, object]) -> list[str]:
    """What importing with the cleaned form `data` will do, for the confirmation page."""
    entry = get_entry(str(data["registry_key"]))
    source = data["weights_source"]
    lines = [f"Import {entry.display_name} ({entry.key}), {len(entry.layers)} layers."]
    if source == NetworkModel.Weights.PRETRAINED:
        lines.append(
            f"A worker downloads the published weights from {entry.weights_url} (through "
            f"{entry.source}); that can take minutes and needs the internet."
        )
    elif source == NetworkModel.Weights.RANDOM:
        lines.append(
            f"Random initialization with seed {data['seed']}: every page will say "
            "“untrained weights”."
        )
    else:
        lines.append(f"The state-dict file {data['weights_path']} on the server.")
    lines.append("The same weights import once; different weights make a new version.")
    return lines

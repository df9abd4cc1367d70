from django import forms

from neurons.models import NetworkModel
from rendering.engine.zoo import ENTRIES, UnknownModelError, get_entry

OTHER_TORCHVISION = "torchvision"


def _registry_choices() -> list[tuple[str, str]]:
    return [(key, f"{entry.display_name} ({key})") for key, entry in sorted(ENTRIES.items())] + [
        (OTHER_TORCHVISION, "Any other torchvision classifier (name it below)")
    ]


class ImportModelForm(forms.Form):
    registry_key = forms.ChoiceField(label="Registry entry", choices=_registry_choices)
    torchvision_name = forms.CharField(
        required=False,
        max_length=52,
        help_text="for 'any other torchvision classifier': e.g. convnext_tiny or "
        "torchvision:convnext_tiny; its layers are found automatically",
    )
    weights_source = forms.ChoiceField(
        choices=NetworkModel.Weights.choices, initial=NetworkModel.Weights.PRETRAINED
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

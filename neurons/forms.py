from django import forms

from neurons.models import NetworkModel
from rendering.engine.zoo import ENTRIES


def _registry_choices() -> list[tuple[str, str]]:
    return [(key, f"{entry.display_name} ({key})") for key, entry in sorted(ENTRIES.items())]


class ImportModelForm(forms.Form):
    registry_key = forms.ChoiceField(label="Registry entry", choices=_registry_choices)
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
        return data


class RenderLayersForm(forms.Form):
    technique = forms.ChoiceField(
        choices=[(t, t) for t in ("channel", "neuron", "negative", "diversity", "deepdream")]
    )
    steps = forms.IntegerField(initial=512, min_value=1, max_value=20000)
    size = forms.IntegerField(initial=224, min_value=16, max_value=1024)
    seed = forms.IntegerField(initial=0, min_value=0)

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from neurons.class_names import model_class_names_fill
from neurons.models import NetworkModel


class Command(BaseCommand):
    help = (
        "Name the output units of each model's classifier layer after their classes (from the "
        "label list its library ships, or a file in MICROSCOPE_LABELS_DIR)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "models", nargs="*", help="model slugs or slug@version (default: every model)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        models = NetworkModel.objects.filter(status=NetworkModel.Status.READY).order_by("pk")
        refs: list[str] = options["models"]
        if refs:
            chosen = []
            for ref in refs:
                slug, _, version = ref.partition("@")
                found = models.filter(slug=slug, **({"version": version} if version else {}))
                if not found.exists():
                    raise CommandError(f"no ready model {ref!r}")
                chosen += list(found)
            models_list = chosen
        else:
            models_list = list(models)
        for model in models_list:
            filled = model_class_names_fill(model=model)
            if filled.units:
                self.stdout.write(f"{model}: {filled.units} class names on {filled.layer}")
            else:
                self.stdout.write(f"{model}: no class names ({filled.note})")

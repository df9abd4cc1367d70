from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Prepare the demo: import InceptionV1 (pretrained if it can be downloaded, else random "
        "init), render one whole layer and compute the connections between layers, here, with "
        "progress bars. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--layer", default="conv2d2", help="the layer to render in full")
        parser.add_argument("--steps", type=int, default=64)
        parser.add_argument("--size", type=int, default=128)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            call_command("import_model", "inceptionv1", weights="pretrained")
        except CommandError as error:
            self.stdout.write(self.style.WARNING(f"Pretrained weights are not available: {error}"))
            self.stdout.write(
                "Importing InceptionV1 with random weights (seed 0) instead; every page of this "
                "model says 'untrained weights'."
            )
            call_command("import_model", "inceptionv1", weights="random", seed=0)
        self.stdout.write(
            f"Rendering every channel of inceptionv1 {options['layer']} "
            f"({options['steps']} steps, {options['size']} px; units already rendered are skipped)"
        )
        call_command(
            "render",
            "inceptionv1",
            layers=options["layer"],
            technique="channel",
            steps=options["steps"],
            size=options["size"],
            here=True,
        )
        self.stdout.write("Computing the connections between consecutive layers (top 20 each way)")
        call_command("connections", "inceptionv1", top=20, here=True)

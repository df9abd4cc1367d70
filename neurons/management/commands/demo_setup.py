from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Prepare the demo: import InceptionV1 (pretrained if it can be downloaded, else random)."

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

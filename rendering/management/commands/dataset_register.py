from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from rendering.datasets import DatasetRefused, dataset_register


class Command(BaseCommand):
    help = (
        "Register a folder of images (nested or ImageFolder-style), or a prefix of the default "
        "storage (storage:<prefix>), as a dataset: every image is hashed into its manifest."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("location", help="an absolute folder path, or storage:<prefix>")
        parser.add_argument("--name", default="", help="display name (default: the slug)")
        parser.add_argument("--description", default="")
        parser.add_argument("--licence", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        bar = tqdm(total=100, unit="%")

        def report(fraction: float, message: str) -> None:
            bar.n = round(100 * fraction)
            bar.set_postfix_str(message)
            bar.refresh()

        try:
            dataset = dataset_register(
                slug=options["slug"],
                name=options["name"] or options["slug"],
                location=options["location"],
                description=options["description"],
                licence=options["licence"],
                progress=report,
            )
        except DatasetRefused as error:
            raise CommandError(str(error)) from None
        finally:
            bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"dataset {dataset.slug}: {dataset.image_count} images, "
                f"manifest {dataset.manifest_sha256[:12]}"
            )
        )

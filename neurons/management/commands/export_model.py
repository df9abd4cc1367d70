from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.http import Http404
from tqdm import tqdm

from microscope_site.errors import Moved
from neurons.export import ExportRefused, export_request, export_run
from neurons.selectors import model_get


class Command(BaseCommand):
    help = (
        "Export a model version's layers, units, renders, dataset examples, connections and "
        "public notes (JSON Lines, Parquet, manifest): queued, or here with --here."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="model slug (the newest version), or slug@version")
        parser.add_argument("--here", action="store_true", help="export in this process")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            network = model_get(options["model"])
        except (Http404, Moved):
            raise CommandError(f"no imported model {options['model']!r}") from None
        try:
            with transaction.atomic():
                export = export_request(model=network, enqueue=not options["here"])
        except ExportRefused as error:
            raise CommandError(str(error)) from None
        if not options["here"]:
            self.stdout.write(f"queued {export} (task {export.task_id})")
            return
        with tqdm(total=100, unit="%", desc=str(network)) as bar:

            def progress(fraction: float, message: str) -> None:
                bar.set_postfix_str(message[:60])
                bar.update(round(fraction * 100) - bar.n)

            done = export_run(export_id=export.pk, progress=progress)
        if done is None:
            raise CommandError(f"{export} was claimed by a worker; see its status in the API")
        if done.status != done.Status.SUCCEEDED:
            raise CommandError(f"{done} {done.status}: {done.error.strip().splitlines()[-1]}")
        for file in done.files:
            self.stdout.write(f"{file['name']:<28} {file['rows']:>9} rows  {file['path']}")
        self.stdout.write(
            self.style.SUCCESS(f"{done}: manifest {done.manifest.name} ({done.manifest_sha256})")
        )

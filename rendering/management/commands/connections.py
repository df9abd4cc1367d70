from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from neurons.selectors import model_get
from rendering.connections import connection_jobs_create
from rendering.services import RenderRefused, render_job_run


class Command(BaseCommand):
    help = "Compute the connections between consecutive layers (queued, or here with --here)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="model slug, or slug@version")
        parser.add_argument(
            "--top", type=int, default=50, help="connections kept per unit and direction"
        )
        parser.add_argument("--here", action="store_true", help="compute in this process")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            network = model_get(options["model"])
        except Exception:
            raise CommandError(f"no imported model {options['model']!r}") from None
        try:
            with transaction.atomic():
                jobs = connection_jobs_create(
                    model=network, top=options["top"], enqueue=not options["here"]
                )
        except RenderRefused as error:
            raise CommandError(str(error)) from None
        if not jobs:
            self.stdout.write("nothing to compute: every layer pair is done or queued")
            return
        if not options["here"]:
            self.stdout.write(f"queued {len(jobs)} connection jobs on queue 'gpu'")
            return
        for job in tqdm(jobs, unit="layer pair"):
            done = render_job_run(job_id=job.pk)
            if done is not None and done.status != "succeeded":
                raise CommandError(f"{done} {done.status}: {done.error.strip().splitlines()[-1]}")
        self.stdout.write(self.style.SUCCESS(f"computed {len(jobs)} layer pairs"))

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from neurons.selectors import model_get
from rendering.examples import examples_jobs_create
from rendering.models import Dataset, RenderJob
from rendering.services import RenderRefused, render_job_run
from rendering.tuning import tuning_jobs_create


class Command(BaseCommand):
    help = (
        "Dataset examples and activation statistics for every unit of the given layers (one pass "
        "over the dataset), and/or tuning curves to synthetic stimuli. Queued on 'gpu', or "
        "computed in this process with --here."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="model slug, or slug@version")
        parser.add_argument("--dataset", default="", help="dataset slug (dataset examples)")
        parser.add_argument("--layers", default="", help="comma-separated (default: every layer)")
        parser.add_argument("--k", type=int, default=40, help="examples kept per unit and side")
        parser.add_argument("--tuning", action="store_true", help="also compute tuning curves")
        parser.add_argument("--here", action="store_true", help="compute in this process")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            network = model_get(options["model"])
        except Exception:
            raise CommandError(f"no imported model {options['model']!r}") from None
        layers = [name for name in options["layers"].split(",") if name] or None
        if not options["dataset"] and not options["tuning"]:
            raise CommandError("give --dataset <slug> for dataset examples, --tuning, or both")
        jobs: list[RenderJob] = []
        try:
            with transaction.atomic():
                if options["dataset"]:
                    dataset = Dataset.objects.filter(slug=options["dataset"]).first()
                    if dataset is None:
                        known = ", ".join(Dataset.objects.values_list("slug", flat=True)) or "none"
                        raise CommandError(
                            f"no dataset {options['dataset']!r} (registered: {known}); "
                            "register one with manage.py dataset_register"
                        )
                    jobs += examples_jobs_create(
                        model=network,
                        dataset=dataset,
                        layers=layers,
                        k=options["k"],
                        enqueue=not options["here"],
                    )
                if options["tuning"]:
                    jobs += tuning_jobs_create(
                        model=network, layers=layers, enqueue=not options["here"]
                    )
        except RenderRefused as error:
            raise CommandError(str(error)) from None
        if not jobs:
            self.stdout.write("nothing to compute: it is done or queued already")
            return
        if not options["here"]:
            self.stdout.write(f"queued {len(jobs)} jobs on queue 'gpu'")
            return
        for job in jobs:
            with tqdm(total=100, unit="%", desc=f"{job.technique.slug} {job.layer.name}") as bar:

                def report(fraction: float, message: str, bar: tqdm = bar) -> None:  # type: ignore[type-arg]
                    bar.n = round(100 * fraction)
                    bar.set_postfix_str(message)
                    bar.refresh()

                done = render_job_run(job_id=job.pk, progress=report)
            if done is not None and done.status != "succeeded":
                raise CommandError(f"{done} {done.status}: {done.error.strip().splitlines()[-1]}")
            if done is not None and done.technique.slug == "examples":
                skipped = [line for line in done.log.splitlines() if line.startswith("skipped ")]
                for line in skipped:
                    self.stdout.write(self.style.WARNING(line))
        self.stdout.write(self.style.SUCCESS(f"computed {len(jobs)} jobs"))

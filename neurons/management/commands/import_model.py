from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from neurons.services import ImportRefused, import_job_create, import_job_run
from rendering.engine.zoo import WeightsError, WeightsSpec


class Command(BaseCommand):
    help = "Import a registry model (InceptionV1, ResNet-50, …) with its layers and units."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "registry_key",
            help="a registry key (inceptionv1, alexnet, vgg19, resnet50, inceptionv3, "
            "inceptionv4, resnetv2_50, clip_rn50, …) or torchvision:<name> for any torchvision "
            "classifier (its layers are found automatically)",
        )
        parser.add_argument(
            "--weights",
            default="pretrained",
            help="'pretrained' (download), 'random' (seeded init), 'train' (train here: "
            "model organisms such as stimuli-cnn) or a path to a state-dict file",
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="seed for --weights random or train"
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help="enqueue for a Celery worker instead of running here",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            spec = WeightsSpec.parse(options["weights"], seed=options["seed"])
            job = import_job_create(
                registry_key=options["registry_key"],
                weights_source=spec.source,
                seed=spec.seed,
                weights_path=spec.path,
                enqueue=options["queue"],
            )
        except (ImportRefused, WeightsError) as error:
            raise CommandError(str(error)) from None
        if options["queue"]:
            self.stdout.write(f"queued {job} (task {job.task_id})")
            return
        with tqdm(total=100, unit="%", desc=options["registry_key"]) as bar:

            def progress(fraction: float, message: str) -> None:
                bar.set_postfix_str(message[:60])
                bar.update(round(fraction * 100) - bar.n)

            import_job_run(job_id=job.pk, progress=progress)
        job.refresh_from_db()
        if job.error:
            raise CommandError(job.error)
        assert job.result is not None
        self.stdout.write(
            self.style.SUCCESS(f"{job.result} is ready ({job.result.get_absolute_url()})")
        )

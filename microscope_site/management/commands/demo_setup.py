import argparse
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

# Sign up with an address at one of these domains to join (the demo's mail goes to the console).
DEMO_INSTITUTIONS = [
    ("north-lab", "North Vision Lab (demo)", "north.example"),
    ("south-institute", "South Institute (demo)", "south.example"),
]


class Command(BaseCommand):
    help = (
        "Prepare the demo: train and import stimuli-cnn (the model organism) and fill in every "
        "technique for all its units; import InceptionV1 (pretrained if it can be downloaded, else random "
        "init), render one whole layer, compute the connections between layers, build the demo "
        "dataset and compute dataset examples and tuning curves, here, with progress bars. "
        "Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--layer", default="conv2d2", help="the layer to render in full")
        parser.add_argument("--steps", type=int, default=64)
        parser.add_argument("--size", type=int, default=128)
        parser.add_argument(
            "--examples-layers",
            default="conv2d2,mixed3a,mixed3b,mixed4a",
            help="layers that get dataset examples and tuning curves",
        )
        parser.add_argument(
            "--organism",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="first train and import stimuli-cnn, the model organism, and fill in every "
            "technique for every one of its units",
        )
        parser.add_argument(
            "--organism-steps", type=int, default=256, help="render steps for the organism"
        )
        parser.add_argument(
            "--zoo",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="also import every other registry model (random init) and queue renders of "
            "16 units of one middle layer of each for the worker",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["organism"]:
            self._organism(options["organism_steps"])
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
        from django.conf import settings

        from rendering.demo_dataset import LICENCE, demo_dataset_build

        folder = settings.VAR_DIR / "datasets" / "demo"
        count = demo_dataset_build(folder)
        self.stdout.write(f"Demo dataset: {count} images in {folder}")
        call_command(
            "dataset_register",
            "demo",
            str(folder),
            name="Demo images",
            description="scikit-image's sample photographs with crops, and synthetic stimuli",
            licence=LICENCE,
        )
        self.stdout.write(
            f"Dataset examples, statistics and tuning curves for {options['examples_layers']}"
        )
        call_command(
            "examples",
            "inceptionv1",
            dataset="demo",
            layers=options["examples_layers"],
            tuning=True,
            here=True,
        )
        if options["zoo"]:
            self._zoo(options["steps"], options["size"])
        from annotations.models import Institution

        for slug, name, domain in DEMO_INSTITUTIONS:
            Institution.objects.get_or_create(
                slug=slug, defaults={"name": name, "email_domains": domain}
            )
        self.stdout.write(
            "Two demo institutions: sign up at /accounts/signup/ with an address at "
            + " or ".join(domain for _, _, domain in DEMO_INSTITUTIONS)
            + " to join one (mail goes to this console)."
        )

    def _organism(self, steps: int) -> None:
        """stimuli-cnn: trained here, so its renders, examples and tuning have a right answer."""
        from django.conf import settings

        from neurons.models import NetworkModel
        from rendering.demo_dataset import (
            LICENCE,
            ORGANISM_LICENCE,
            demo_dataset_build,
            organism_held_out_build,
        )

        key = "stimuli-cnn"
        if NetworkModel.objects.filter(registry_key=key, weights_source="train").exists():
            self.stdout.write(f"{key} is already trained and imported")
        else:
            self.stdout.write(f"Training {key} on generated stimuli (about a minute of CPU)")
            call_command("import_model", key, weights="train")
        layers = [layer.name for layer in NetworkModel.objects.filter(registry_key=key)
                  .latest("created").layers.order_by("order")]  # fmt: skip
        *convs, logits = layers
        self.stdout.write(f"Rendering every unit of {key} ({steps} steps, 64 px)")
        for layer, technique in [*((c, "channel") for c in convs), (logits, "neuron"),
                                 (logits, "diversity")]:  # fmt: skip
            call_command(
                "render", key, layers=layer, technique=technique, steps=steps, size=64, here=True
            )
        call_command("connections", key, top=20, here=True)
        held_out = settings.VAR_DIR / "datasets" / "stimuli-heldout"
        count = organism_held_out_build(held_out)
        self.stdout.write(f"Held-out stimuli: {count} images in {held_out}")
        call_command(
            "dataset_register",
            "stimuli-heldout",
            str(held_out),
            name="Held-out stimuli",
            description=f"generated stimuli {key} never saw in training, one folder per class",
            licence=ORGANISM_LICENCE,
        )
        photos = settings.VAR_DIR / "datasets" / "demo"
        demo_dataset_build(photos)
        call_command(
            "dataset_register",
            "demo",
            str(photos),
            name="Demo images",
            description="scikit-image's sample photographs with crops, and synthetic stimuli",
            licence=LICENCE,
        )
        for dataset in ("stimuli-heldout", "demo"):
            call_command(
                "examples",
                key,
                dataset=dataset,
                layers=",".join(layers),
                tuning=dataset == "stimuli-heldout",  # once: tuning needs no dataset
                here=True,
            )

    def _zoo(self, steps: int, size: int) -> None:
        from neurons.models import NetworkModel
        from rendering.engine.zoo import ENTRIES
        from rendering.services import render_jobs_create

        for key, entry in ENTRIES.items():
            if key == "inceptionv1":
                continue
            self.stdout.write(f"Importing {entry.display_name} (random init)")
            call_command("import_model", key, weights="random", seed=0)
            network = NetworkModel.objects.filter(registry_key=key).latest("created")
            spatial = [layer for layer in network.layers.order_by("order") if layer.spatial]
            layer = spatial[len(spatial) // 2]
            jobs = render_jobs_create(
                layer=layer,
                technique=layer.grid_techniques[0],
                units=range(min(16, layer.num_units)),
                params={"steps": steps, "size": size},
            )
            self.stdout.write(
                f"  queued {len(jobs)} render job(s) for {network.slug} {layer.name} units 0-15"
            )

"""The catalogue: network models (one row per weights version), their layers and units."""

from django.conf import settings
from django.db import models

from microscope_site.jobs import Job
from microscope_site.links import reverse_kept


class NetworkModel(models.Model):
    """One version of one registry model: a slug plus weights identified by their sha256."""

    class Weights(models.TextChoices):
        PRETRAINED = "pretrained", "pretrained"
        RANDOM = "random", "random init (untrained)"
        FILE = "file", "state-dict file"
        TRAIN = "train", "trained here (model organism)"

    class Status(models.TextChoices):
        IMPORTING = "importing", "importing"
        READY = "ready", "ready"
        FAILED = "failed", "failed"

    slug = models.SlugField(max_length=64)
    version = models.CharField(
        max_length=16, help_text="the first 12 hex digits of the weights' sha256; never reused"
    )
    display_name = models.CharField(max_length=128)
    family = models.CharField(max_length=64, blank=True)
    registry_key = models.CharField(max_length=64)
    weights_source = models.CharField(max_length=16, choices=Weights.choices)
    weights_detail = models.CharField(max_length=512, blank=True, help_text="seed or file path")
    weights_sha256 = models.CharField(max_length=64)
    architecture_revision = models.PositiveIntegerField(
        default=1,
        help_text="the registry entry's architecture revision: same weights under another "
        "forward pass are another version",
    )
    training = models.JSONField(
        default=dict,
        blank=True,
        help_text="for weights trained here: how (seed, steps, held-out accuracy, times)",
    )
    weights_url = models.CharField(
        max_length=512,
        blank=True,
        help_text="where the published weights come from (a URL, or timm:/open_clip: names)",
    )
    training_dataset = models.CharField(max_length=128, blank=True)
    input_size = models.PositiveIntegerField()
    preprocessing = models.JSONField(default=dict)
    description = models.TextField(blank=True)
    citation_bibtex = models.TextField(blank=True)
    licence = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IMPORTING)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    content_version = models.PositiveIntegerField(
        default=0, help_text="bumped whenever anything its pages show changes (page cache key)"
    )

    class Meta:
        ordering = ["slug", "-created"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="model_slug_version_unique"),
            models.UniqueConstraint(
                fields=["slug", "weights_sha256", "architecture_revision"],
                name="model_slug_weights_revision_unique",
            ),
        ]
        indexes = [models.Index(fields=["slug", "status", "-created"])]

    def __str__(self) -> str:
        return f"{self.slug}@{self.version}"

    def get_absolute_url(self) -> str:
        return reverse_kept("neurons:model", kwargs={"model": self.slug})

    def get_versioned_url(self) -> str:
        return reverse_kept("neurons:model", kwargs={"model": f"{self.slug}@{self.version}"})

    @property
    def untrained(self) -> bool:
        return self.weights_source == self.Weights.RANDOM


class Layer(models.Model):
    class Kind(models.TextChoices):
        CONV = "conv", "convolution"
        BLOCK = "block", "block output"
        LINEAR = "linear", "fully connected"
        ATTENTION = "attention", "attention pool"

    model = models.ForeignKey(NetworkModel, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(max_length=64, help_text="the literature's name, used in URLs")
    module_path = models.CharField(max_length=128)
    order = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    num_units = models.PositiveIntegerField()
    output_shape = models.JSONField(help_text="(C, H, W) or (C,) at the model's input size")
    receptive_field = models.PositiveIntegerField(help_text="pixels, clipped to the input")
    receptive_field_stride = models.PositiveIntegerField(help_text="0 for non-spatial layers")
    class_names_note = models.CharField(
        max_length=400,
        blank=True,
        help_text="for a classifier's output layer whose units have no class names: why not",
    )
    receptive_field_offset = models.FloatField(
        default=0.0,
        help_text="pixels from the (i + 0.5) x input / map cell centre to the measured centre of "
        "unit i's receptive field (asymmetric padding); used for crops and tuning stimuli",
    )

    class Meta:
        ordering = ["model", "order"]
        constraints = [
            models.UniqueConstraint(fields=["model", "name"], name="layer_model_name_unique"),
            models.UniqueConstraint(fields=["model", "order"], name="layer_model_order_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model}/{self.name}"

    def get_absolute_url(self) -> str:
        return layer_path(self.model.slug, self.name)

    def get_versioned_url(self) -> str:
        return layer_path(f"{self.model.slug}@{self.model.version}", self.name)

    @property
    def spatial(self) -> bool:
        return len(self.output_shape) == 3

    @property
    def grid_techniques(self) -> tuple[str, ...]:
        """What the layer grid offers: a unit of a non-spatial layer (a fully connected or
        attention-pool output) is one neuron, so its channel objective would be the neuron's."""
        if self.spatial:
            return ("channel", "neuron", "negative", "diversity", "examples")
        return ("neuron", "negative", "diversity", "examples")


class Unit(models.Model):
    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="units")
    index = models.PositiveIntegerField()
    curator_label = models.CharField(max_length=200, blank=True)
    class_name = models.CharField(
        max_length=200,
        blank=True,
        help_text="the class this output unit scores, from the label list its library ships",
    )
    family_tag = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="a neuron family, as in the Circuits thread ('curve detectors')",
    )
    discussion_version = models.PositiveIntegerField(
        default=0,
        help_text="bumped whenever its comments change: part of its pages' cache key, so a"
        " comment refreshes this unit's pages and no other cached page of the model",
    )

    class Meta:
        ordering = ["layer", "index"]
        constraints = [
            models.UniqueConstraint(fields=["layer", "index"], name="unit_layer_index_unique")
        ]
        # Few units have a label, a class name or a family tag: search reads just those rows
        # (its queries exclude the empty ones) instead of every unit of the catalogue.
        indexes = [
            models.Index(
                fields=["layer"], condition=~models.Q(curator_label=""), name="unit_labelled"
            ),
            models.Index(fields=["layer"], condition=~models.Q(class_name=""), name="unit_named"),
            models.Index(fields=["layer"], condition=~models.Q(family_tag=""), name="unit_tagged"),
        ]

    def __str__(self) -> str:
        return f"{self.layer}/{self.index}"

    # A unit's URL is its layer's and its index (`neurons.urls`).
    def get_absolute_url(self) -> str:
        return f"{layer_path(self.layer.model.slug, self.layer.name)}{self.index}/"

    def get_versioned_url(self) -> str:
        model = self.layer.model
        return f"{layer_path(f'{model.slug}@{model.version}', self.layer.name)}{self.index}/"


def layer_path(model: str, layer: str) -> str:
    """A layer's page; unit links start with it (a search page lists a hundred)."""
    return reverse_kept("neurons:layer", kwargs={"model": model, "layer": layer})


class Technique(models.Model):
    class Level(models.TextChoices):
        UNIT = "unit", "unit"
        LAYER = "layer", "layer"
        MODEL = "model", "model"

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True)
    level = models.CharField(max_length=8, choices=Level.choices)
    default_params = models.JSONField(default=dict)

    class Meta:
        ordering = ["level", "slug"]

    def __str__(self) -> str:
        return self.name


class ImportJob(Job):
    """One request to import a registry model; the row exists before its Celery task does."""

    registry_key = models.CharField(max_length=64)
    weights_source = models.CharField(max_length=16, choices=NetworkModel.Weights.choices)
    seed = models.IntegerField(default=0)
    weights_path = models.CharField(max_length=512, blank=True)
    result = models.ForeignKey(
        NetworkModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"import {self.registry_key} ({self.weights_source}) #{self.pk}"


class Rename(models.Model):
    """An old name that must keep working: a model slug, or a layer name within a model slug.

    Every URL that used the old name answers 301 to the same URL with the new name. Renaming
    again points the older names straight at the newest (no chains).
    """

    class Kind(models.TextChoices):
        MODEL = "model", "model slug"
        LAYER = "layer", "layer name"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    model_slug = models.SlugField(max_length=64, help_text="for layers: the model's current slug")
    old = models.CharField(max_length=64)
    new = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "model_slug", "old"], name="rename_unique")
        ]

    def __str__(self) -> str:
        where = f" in {self.model_slug}" if self.kind == self.Kind.LAYER else ""
        return f"{self.get_kind_display()} {self.old} → {self.new}{where}"


class ExportQuerySet(models.QuerySet["Export"]):
    def succeeded(self) -> "ExportQuerySet":
        """Finished exports, newest first (`network.exports.succeeded.first` in templates)."""
        return self.filter(status=Export.Status.SUCCEEDED).order_by("-finished", "-pk")


class Export(Job):
    """A bulk export of one model version: tables as JSON Lines (and Parquet) and a manifest.

    The row exists before its Celery task; at most one export per model version is queued, so
    asking again while one waits adds nothing (the queued one will read the newest data).
    """

    model = models.ForeignKey(NetworkModel, on_delete=models.CASCADE, related_name="exports")
    content_version = models.PositiveIntegerField(
        default=0, help_text="the model's content version the export shows (current when equal)"
    )
    files = models.JSONField(
        default=list,
        help_text="[{name, table, format, rows, bytes, sha256, path}], as in the manifest",
    )
    manifest = models.FileField(max_length=255, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)

    objects = ExportQuerySet.as_manager()

    class Meta(Job.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(status="queued"),
                name="export_one_queued_per_model",
            )
        ]

    def __str__(self) -> str:
        return f"export of {self.model} #{self.pk}"

    def downloads(self) -> list[dict[str, object]]:
        """The files as the manifest lists them, each with its URL in the default storage."""
        from django.core.files.storage import default_storage

        return [{**file, "url": default_storage.url(file["path"])} for file in self.files]


class IdempotentRequest(models.Model):
    """The first answer to a write sent with an `Idempotency-Key` header, so a client that
    retries (after a timeout, a dropped connection, a 5xx) gets that answer again instead of a
    second row. One row per (user, key), for `IDEMPOTENCY_KEY_TTL_S` (24 h, as Stripe's).

    A table with a unique constraint rather than the cache: the cache may drop a key at any
    time (LRU eviction, a Redis restart, local memory per process on the embedded default),
    and a dropped key is exactly the duplicate this exists to prevent; the row is also written
    in the same transaction as what the request stores, so a crash leaves neither."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path and body")
    status = models.PositiveSmallIntegerField()
    body = models.JSONField()
    location = models.CharField(max_length=2048, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_user_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} by user {self.user_id}"

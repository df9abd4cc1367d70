"""Renders (images of what a unit or layer responds to) and the jobs that make them."""

from django.db import models
from django.db.models import Q

from microscope_site.jobs import Job
from neurons.models import Layer, Technique, Unit


class Render(models.Model):
    """One image. Unique per (target, technique, params_hash, variant): never two of one thing."""

    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.CASCADE, related_name="renders"
    )
    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="renders")
    technique = models.ForeignKey(Technique, on_delete=models.PROTECT, related_name="renders")
    params = models.JSONField()
    params_hash = models.CharField(max_length=64)
    variant = models.PositiveSmallIntegerField(default=0, help_text="diversity image number")
    image = models.FileField(max_length=255)
    thumbnail = models.FileField(max_length=255)
    image_sha256 = models.CharField(max_length=64)
    objective = models.FloatField(help_text="final objective value on the image, no transforms")
    metrics = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["technique", "variant", "-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "technique", "params_hash", "variant"],
                condition=Q(unit__isnull=False),
                name="render_unit_unique",
            ),
            models.UniqueConstraint(
                fields=["layer", "technique", "params_hash", "variant"],
                condition=Q(unit__isnull=True),
                name="render_layer_unique",
            ),
        ]
        indexes = [models.Index(fields=["layer", "technique", "params_hash"])]

    def __str__(self) -> str:
        target = self.unit or self.layer
        suffix = f" #{self.variant}" if self.variant else ""
        return f"{self.technique.slug} of {target}{suffix}"


class RenderJob(Job):
    """Render a range of units of one layer (or the layer itself) with one technique."""

    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="render_jobs")
    technique = models.ForeignKey(Technique, on_delete=models.PROTECT)
    params = models.JSONField()
    params_hash = models.CharField(max_length=64)
    unit_start = models.PositiveIntegerField(default=0)
    unit_stop = models.PositiveIntegerField(default=0, help_text="exclusive; 0 for layer renders")

    class Meta(Job.Meta):
        constraints = [
            # At most one queued/running job renders the same thing.
            models.UniqueConstraint(
                fields=["layer", "technique", "params_hash", "unit_start", "unit_stop"],
                condition=Q(status__in=["queued", "running"]),
                name="renderjob_active_unique",
            )
        ]

    def __str__(self) -> str:
        span = f" units {self.unit_start}–{self.unit_stop - 1}" if self.unit_stop else ""
        return f"{self.technique.slug} {self.layer}{span} #{self.pk}"

    @property
    def unit_count(self) -> int:
        return self.unit_stop - self.unit_start


class LayerConnection(models.Model):
    """The weights between two visualized layers: direct, or expanded through linear steps."""

    source = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="outgoing")
    target = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="incoming")
    method = models.CharField(max_length=16, help_text="direct or expanded")
    kernel_size = models.PositiveSmallIntegerField()
    matrix = models.FileField(max_length=255, help_text=".npy float16 (target units, source units)")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "target"], name="layerconnection_unique")
        ]

    def __str__(self) -> str:
        return f"{self.source} → {self.target.name} ({self.method})"


class Connection(models.Model):
    """A unit's strongest connections in one direction, ranked: what its page shows."""

    class Direction(models.TextChoices):
        IN = "in", "inputs"
        OUT = "out", "outputs"

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="connections")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    pair = models.ForeignKey(LayerConnection, on_delete=models.CASCADE, related_name="units")
    other_indices = models.JSONField(help_text="unit indices in the other layer, strongest first")
    strengths = models.JSONField(help_text="signed L2 norm of each kernel")
    kernels = models.BinaryField(help_text="float16 (top, k, k), same order")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "direction", "pair"], name="connection_unit_direction_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} of {self.unit}"


class Dataset(models.Model):
    """A folder of images (local, or a prefix of the default storage) that passes read from.

    The manifest (one JSON line per image: relative path and sha256) fixes the images and their
    order, so every result names exactly the images it came from; its sha256 is in the params
    of every pass over the dataset.
    """

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    location = models.CharField(
        max_length=512,
        help_text="an absolute folder path, or storage:<prefix> in the default storage",
    )
    description = models.TextField(blank=True)
    licence = models.CharField(max_length=256, blank=True)
    image_count = models.PositiveIntegerField()
    manifest = models.FileField(max_length=255, help_text="JSON lines: path, sha256")
    manifest_sha256 = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class UnitExamples(models.Model):
    """A unit's dataset examples and activation statistics from one pass over one dataset.

    `top` and `bottom` are lists of {"image", "path", "value", "y", "x", "box", "full"}:
    the dataset index and path, the activation, its position in the layer's map, the crop's
    box in input pixels, and the stored full image; `sprite_*` hold the crops side by side.
    """

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="examples")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="examples")
    params_hash = models.CharField(max_length=64)
    top = models.JSONField()
    bottom = models.JSONField()
    negative_source = models.CharField(max_length=16, help_text="pre-activation or output")
    sprite_top = models.FileField(max_length=255)
    sprite_bottom = models.FileField(max_length=255)
    crop_size = models.PositiveSmallIntegerField()
    stats = models.JSONField(help_text="count, mean, std, max, min, quantiles, histogram")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "dataset", "params_hash"], name="unitexamples_unique"
            )
        ]

    def __str__(self) -> str:
        return f"examples of {self.unit} in {self.dataset}"


class TuningCurve(models.Model):
    """A unit's responses to one family of synthetic stimuli, swept over the family's grid."""

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="tuning_curves")
    family = models.CharField(max_length=32)
    params_hash = models.CharField(max_length=64)
    grid = models.JSONField(help_text="{parameter name: values}, in the responses' axis order")
    responses = models.JSONField(help_text="nested lists, one axis per grid parameter")
    summary = models.JSONField(default=dict, help_text="preferred parameters, selectivity")
    svg = models.TextField(help_text="the plot, drawn once when stored")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["family"]
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "family", "params_hash"], name="tuningcurve_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.family} tuning of {self.unit}"

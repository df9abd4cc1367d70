"""Renders (images of what a unit or layer responds to) and the jobs that make them."""

from django.db import models
from django.db.models import Q

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


class RenderJob(models.Model):
    """Render a range of units of one layer (or the layer itself) with one technique."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="render_jobs")
    technique = models.ForeignKey(Technique, on_delete=models.PROTECT)
    params = models.JSONField()
    params_hash = models.CharField(max_length=64)
    unit_start = models.PositiveIntegerField(default=0)
    unit_stop = models.PositiveIntegerField(default=0, help_text="exclusive; 0 for layer renders")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    heartbeat = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            # At most one queued/running job renders the same thing.
            models.UniqueConstraint(
                fields=["layer", "technique", "params_hash", "unit_start", "unit_stop"],
                condition=Q(status__in=["queued", "running"]),
                name="renderjob_active_unique",
            )
        ]
        indexes = [models.Index(fields=["status", "heartbeat"])]

    def __str__(self) -> str:
        span = f" units {self.unit_start}–{self.unit_stop - 1}" if self.unit_stop else ""
        return f"{self.technique.slug} {self.layer}{span} #{self.pk}"

    @property
    def unit_count(self) -> int:
        return self.unit_stop - self.unit_start

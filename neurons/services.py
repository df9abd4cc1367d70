"""Writes to the catalogue. Views, admin, commands, the API and tasks all call these."""

import hashlib
import io
import logging
import re
import uuid

import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F

from microscope_site.errors import Refused
from microscope_site.jobs import Heartbeat, job_enqueue, job_retry, job_run
from microscope_site.progress import Progress, ignore_progress
from neurons.class_names import model_class_names_fill
from neurons.jobs import IMPORT_JOBS
from neurons.models import ImportJob, Layer, NetworkModel, Rename, Unit
from rendering.engine.zoo import (
    UnknownModelError,
    WeightsError,
    WeightsSpec,
    ZooEntry,
    get_entry,
    inspect_layers,
    load_model,
)
from rendering.engine.zoo.introspect import LayerInfo

logger = logging.getLogger(__name__)

# Layer facts depend on the architecture only, so one measurement per process serves every
# version of a registry model.
_layer_facts: dict[str, list[LayerInfo]] = {}

VERSION_DIGITS = 12


class ImportRefused(Refused):
    """An import that cannot succeed as asked; the message says why and what to do."""


def _layer_infos(entry: ZooEntry, module: object, input_size: int) -> list[LayerInfo]:
    key = f"{entry.key}@{input_size}"
    if key not in _layer_facts:
        _layer_facts[key] = inspect_layers(module, entry.layers, input_size=input_size)  # type: ignore[arg-type]
    return _layer_facts[key]


def model_version_label(sha256: str, revision: int) -> str:
    """The version in URLs (hex, as URLs expect): the weights' first 12 hex digits under
    architecture revision 1, so every version imported before revisions existed keeps its
    label and URLs; from revision 2 on, the first 12 of sha256("<weights sha256>:r<n>")."""
    if revision == 1:
        return sha256[:VERSION_DIGITS]
    return hashlib.sha256(f"{sha256}:r{revision}".encode()).hexdigest()[:VERSION_DIGITS]


def _store_trained_weights(sha256: str, state_dict: dict[str, torch.Tensor]) -> str:
    """Keep weights trained here in the default storage, so every worker loads the same ones."""
    name = f"weights/{sha256}.pt"
    if not default_storage.exists(name):
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        default_storage.save(name, ContentFile(buffer.getvalue()))
    return name


def model_import(
    *,
    registry_key: str,
    weights: WeightsSpec,
    progress: Progress = ignore_progress,
    input_size: int | None = None,
) -> NetworkModel:
    """Import one version of a registry model with all its layers and units.

    `registry_key` is a registry key or `torchvision:<name>` for any torchvision classifier.
    Idempotent: the same weights (by sha256) return the existing version untouched. Different
    weights create a new version; old versions are never changed. Everything is written in one
    transaction, so a failure leaves no half-made model. `input_size` measures the layers at
    another size than the model's own (quick looks and tests; pages show the size used).
    """
    try:
        entry = get_entry(registry_key)
    except UnknownModelError as error:
        raise ImportRefused(str(error)) from None
    except ValueError as error:  # a torchvision model whose layers cannot be found
        raise ImportRefused(f"{registry_key}: {error}") from None
    size = input_size or entry.input_size
    progress(0.05, f"building {entry.display_name} with {weights.describe()}")

    def training_progress(step: int, steps: int, accuracy: float) -> None:
        progress(0.05 + 0.25 * step / steps, f"training {step}/{steps}, accuracy {accuracy:.0%}")

    try:
        loaded = load_model(entry, weights, progress=False, training_progress=training_progress)
    except WeightsError as error:
        raise ImportRefused(str(error)) from None
    sha = loaded.sha256
    revision = entry.revision
    # A renamed model keeps its new slug for later versions.
    slug = (
        NetworkModel.objects.filter(registry_key=entry.key)
        .order_by("-created")
        .values_list("slug", flat=True)
        .first()
    ) or entry.slug
    existing = NetworkModel.objects.filter(
        slug=slug, weights_sha256=sha, architecture_revision=revision
    ).first()
    if existing is not None:
        progress(1.0, f"{existing} already imported with these weights (sha256 {sha[:12]}…)")
        return existing
    detail = str(weights.seed) if weights.source == "random" else weights.path
    training: dict[str, object] = {}
    if loaded.training is not None:
        detail = _store_trained_weights(sha, loaded.module.state_dict())
        training = {**loaded.training.as_dict(), "description": loaded.training.describe()}
    progress(0.3, f"weights sha256 {sha}; measuring layers at {size} px")
    infos = _layer_infos(entry, loaded.module, size)
    progress(0.6, f"{len(infos)} layers, {sum(i.num_units for i in infos)} units; writing")
    with transaction.atomic():
        model = NetworkModel.objects.create(
            slug=slug,
            version=model_version_label(sha, revision),
            display_name=entry.display_name,
            family=entry.family,
            registry_key=entry.key,
            weights_source=weights.source,
            weights_detail=detail,
            weights_sha256=sha,
            architecture_revision=revision,
            training=training,
            weights_url=entry.weights_url,
            training_dataset=entry.training_dataset,
            input_size=size,
            preprocessing=entry.preprocessing.as_dict(),
            description=entry.description,
            citation_bibtex=entry.citation,
            licence=entry.licence,
            status=NetworkModel.Status.READY,
        )
        layers = Layer.objects.bulk_create(
            Layer(
                model=model,
                name=info.name,
                module_path=info.module,
                order=order,
                kind=info.kind,
                num_units=info.num_units,
                output_shape=list(info.output_shape),
                receptive_field=info.receptive_field,
                receptive_field_stride=info.receptive_field_stride,
                receptive_field_offset=info.receptive_field_offset,
            )
            for order, info in enumerate(infos)
        )
        if any(layer.pk is None for layer in layers):  # backends without RETURNING
            layers = list(model.layers.order_by("order"))
        Unit.objects.bulk_create(
            (Unit(layer=layer, index=i) for layer in layers for i in range(layer.num_units)),
            batch_size=5000,
        )
        model_class_names_fill(model=model)
        # Older versions' pages now point to this one.
        NetworkModel.objects.filter(slug=slug).update(content_version=F("content_version") + 1)
    progress(1.0, f"imported {model} ({model.weights_source})")
    return model


def import_job_create(
    *,
    registry_key: str,
    weights_source: str,
    seed: int = 0,
    weights_path: str = "",
    requested_by: object | None = None,
    enqueue: bool = True,
) -> ImportJob:
    """Validate the request, write the job row and enqueue its task when the row is committed."""
    try:
        entry = get_entry(registry_key)
        WeightsSpec(source=weights_source, seed=seed, path=weights_path)
    except (UnknownModelError, WeightsError, ValueError) as error:
        raise ImportRefused(str(error)) from None
    if weights_source == "train" and entry.train is None:
        raise ImportRefused(
            f"{registry_key} cannot be trained here (only model organisms such as stimuli-cnn "
            "can); use --weights pretrained, random or a state-dict file"
        )
    job = ImportJob.objects.create(
        registry_key=registry_key,
        weights_source=weights_source,
        seed=seed,
        weights_path=weights_path,
        requested_by=requested_by,  # type: ignore[misc]
        task_id=str(uuid.uuid4()),
    )
    if enqueue:
        job_enqueue(IMPORT_JOBS, job)
    return job


def import_job_retry(*, job: ImportJob) -> ImportJob:
    """Queue a failed (or never-enqueued) job again, under a new task id."""
    job = job_retry(IMPORT_JOBS, job)
    job.progress = 0.0
    ImportJob.objects.filter(pk=job.pk).update(progress=0.0)
    return job


def import_job_run(*, job_id: int, progress: Progress = ignore_progress) -> ImportJob | None:
    """Claim and run one import job. Returns None when another worker holds it or it is done.

    A refusal (unknown weights file, a hash that does not match …) fails it at once; anything
    else queues it again until `IMPORT_MAX_ATTEMPTS`, then it stays failed.
    """

    def work(job: ImportJob) -> list[str]:
        weights = WeightsSpec(source=job.weights_source, seed=job.seed, path=job.weights_path)
        beat = Heartbeat(job, progress, log=True)
        job.result = model_import(registry_key=job.registry_key, weights=weights, progress=beat)
        return ["result"]

    return job_run(IMPORT_JOBS, job_id, work)  # type: ignore[return-value]


# --- names and page freshness -----------------------------------------------------------------


class RenameRefused(Refused):
    """A rename that cannot be done; the message says why."""


_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")
_LAYER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def model_touch(model_id: int) -> None:
    """Something a model's pages show changed: their cached copies are stale from now on."""
    NetworkModel.objects.filter(pk=model_id).update(content_version=F("content_version") + 1)


def unit_touch(unit_id: int) -> None:
    """Something only this unit's pages show changed (its comments): only their cached copies
    are stale from now on, so a busy discussion leaves the rest of the model's pages cached."""
    Unit.objects.filter(pk=unit_id).update(discussion_version=F("discussion_version") + 1)


@transaction.atomic
def model_rename(*, slug: str, new_slug: str) -> int:
    """Give every version of model `slug` the slug `new_slug`; old URLs answer 301.

    Returns the number of versions renamed.
    """
    if not _SLUG.fullmatch(new_slug) or len(new_slug) > 64:
        raise RenameRefused(f"{new_slug!r} is not a slug (lower-case letters, digits, - and _)")
    if NetworkModel.objects.filter(slug=new_slug).exists():
        raise RenameRefused(f"a model is already called {new_slug!r}")
    count = NetworkModel.objects.filter(slug=slug).update(
        slug=new_slug, content_version=F("content_version") + 1
    )
    if not count:
        raise RenameRefused(f"no model is called {slug!r}")
    model_renames = Rename.objects.filter(kind=Rename.Kind.MODEL)
    model_renames.filter(old=new_slug).delete()  # the name is in use again
    model_renames.filter(new=slug).update(new=new_slug)  # no chains
    Rename.objects.create(kind=Rename.Kind.MODEL, model_slug="", old=slug, new=new_slug)
    Rename.objects.filter(kind=Rename.Kind.LAYER, model_slug=slug).update(model_slug=new_slug)
    return count


@transaction.atomic
def layer_rename(*, model_slug: str, name: str, new_name: str) -> int:
    """Rename layer `name` in every version of model `model_slug`; old URLs answer 301."""
    if not _LAYER.fullmatch(new_name) or len(new_name) > 64:
        raise RenameRefused(f"{new_name!r} is not a layer name (letters, digits, _ . -)")
    layers = Layer.objects.filter(model__slug=model_slug)
    if layers.filter(name=new_name).exists():
        raise RenameRefused(f"{model_slug} already has a layer called {new_name!r}")
    renamed = list(layers.filter(name=name).values_list("model_id", flat=True))
    if not renamed:
        raise RenameRefused(f"{model_slug} has no layer {name!r}")
    layers.filter(name=name).update(name=new_name)
    layer_renames = Rename.objects.filter(kind=Rename.Kind.LAYER, model_slug=model_slug)
    layer_renames.filter(old=new_name).delete()
    layer_renames.filter(new=name).update(new=new_name)
    Rename.objects.create(kind=Rename.Kind.LAYER, model_slug=model_slug, old=name, new=new_name)
    NetworkModel.objects.filter(pk__in=renamed).update(content_version=F("content_version") + 1)
    return len(renamed)

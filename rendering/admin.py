"""Renders and render jobs; and the render and connection actions rendering adds to the
catalogue's model and layer admin (the catalogue's admin knows nothing of rendering)."""

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html

from microscope_site.errors import Refused
from neurons import admin as catalogue_admin
from neurons.forms import RenderLayersForm
from neurons.models import Layer, NetworkModel
from rendering.connections import connection_jobs_create
from rendering.models import Render, RenderJob
from rendering.services import RenderRefused, render_job_retry, render_jobs_create


@admin.register(Render)
class RenderAdmin(admin.ModelAdmin):
    list_display = ["__str__", "preview", "objective", "created"]
    list_filter = ["technique", "layer__model"]
    list_select_related = ["technique", "unit__layer__model", "layer__model"]
    raw_id_fields = ["unit", "layer"]
    readonly_fields = ["params", "params_hash", "metrics", "image_sha256"]

    @admin.display(description="image")
    def preview(self, obj: Render) -> str:
        return format_html('<img src="{}" width="48" height="48" alt="">', obj.thumbnail.url)


@admin.register(RenderJob)
class RenderJobAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "progress", "attempts", "heartbeat", "error", "created"]
    list_filter = ["status", "technique", "layer__model"]
    list_select_related = ["technique", "layer__model"]
    readonly_fields = [f.name for f in RenderJob._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs come from render_jobs_create (commands, actions, the API)

    @admin.action(description="Retry the selected failed jobs")
    def retry(self, request: HttpRequest, queryset: QuerySet[RenderJob]) -> None:
        for job in queryset:
            try:
                render_job_retry(job=job)
            except Refused as error:
                self.message_user(request, str(error), messages.WARNING)
            else:
                self.message_user(request, f"Queued {job} again.", messages.SUCCESS)


def _render_action(
    modeladmin: admin.ModelAdmin,  # type: ignore[type-arg]
    request: HttpRequest,
    queryset: QuerySet,  # type: ignore[type-arg]
    layers: list[Layer],
) -> HttpResponse | None:
    """Intermediate page: pick technique and steps, then queue render jobs for `layers`."""
    form = RenderLayersForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        data = form.cleaned_data
        params = {"steps": data["steps"], "size": data["size"], "seed": data["seed"]}
        try:
            with transaction.atomic():
                jobs = [
                    job
                    for layer in layers
                    for job in render_jobs_create(
                        layer=layer, technique=data["technique"], params=params
                    )
                ]
        except RenderRefused as error:
            modeladmin.message_user(request, str(error), messages.ERROR)
            return None
        modeladmin.message_user(
            request, f"Queued {len(jobs)} render jobs for {len(layers)} layers.", messages.SUCCESS
        )
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Render {len(layers)} layers",
        "form": form,
        "queryset": queryset,
        "layers": layers,
        "action": request.POST.get("action"),
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/neurons/render_layers.html", context)


# The catalogue registered its own admin for these two; rendering's adds the actions.
admin.site.unregister(NetworkModel)
admin.site.unregister(Layer)


@admin.register(NetworkModel)
class NetworkModelAdmin(catalogue_admin.NetworkModelAdmin):
    actions = ["render_models", "compute_connections"]

    @admin.action(description="Compute connections between the layers of the selected models")
    def compute_connections(self, request: HttpRequest, queryset: QuerySet[NetworkModel]) -> None:
        with transaction.atomic():
            jobs = [job for model in queryset for job in connection_jobs_create(model=model)]
        self.message_user(request, f"Queued {len(jobs)} connection jobs.", messages.SUCCESS)

    @admin.action(description="Render every layer of the selected models")
    def render_models(
        self, request: HttpRequest, queryset: QuerySet[NetworkModel]
    ) -> HttpResponse | None:
        layers = list(Layer.objects.filter(model__in=queryset).order_by("model", "order"))
        return _render_action(self, request, queryset, layers)


@admin.register(Layer)
class LayerAdmin(catalogue_admin.LayerAdmin):
    actions = ["render_layers"]

    @admin.action(description="Render the selected layers")
    def render_layers(self, request: HttpRequest, queryset: QuerySet[Layer]) -> HttpResponse | None:
        return _render_action(self, request, queryset, list(queryset.order_by("model", "order")))

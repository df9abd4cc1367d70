from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from neurons.forms import ImportModelForm, RenderLayersForm, import_summary
from neurons.models import ImportJob, Layer, NetworkModel, Technique, Unit
from neurons.services import ImportFailed, import_job_create, import_job_retry


def _render_action(
    modeladmin: admin.ModelAdmin,  # type: ignore[type-arg]
    request: HttpRequest,
    queryset: QuerySet,  # type: ignore[type-arg]
    layers: list[Layer],
) -> HttpResponse | None:
    """Intermediate page: pick technique and steps, then queue render jobs for `layers`."""
    from rendering.services import RenderRefused, render_jobs_create

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


@admin.register(NetworkModel)
class NetworkModelAdmin(admin.ModelAdmin):
    list_display = ["__str__", "display_name", "weights_source", "status", "created"]
    list_filter = ["slug", "weights_source", "status"]
    readonly_fields = ["slug", "version", "registry_key", "weights_sha256", "weights_source"]
    search_fields = ["slug", "display_name", "version"]
    actions = ["render_models", "compute_connections"]

    @admin.action(description="Compute connections between the layers of the selected models")
    def compute_connections(self, request: HttpRequest, queryset: QuerySet[NetworkModel]) -> None:
        from rendering.connections import connection_jobs_create

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
class LayerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "num_units", "receptive_field", "receptive_field_stride"]
    list_filter = ["model"]
    search_fields = ["name"]
    actions = ["render_layers"]

    @admin.action(description="Render the selected layers")
    def render_layers(self, request: HttpRequest, queryset: QuerySet[Layer]) -> HttpResponse | None:
        return _render_action(self, request, queryset, list(queryset.order_by("model", "order")))


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ["__str__", "curator_label", "family_tag"]
    list_select_related = ["layer__model"]
    search_fields = ["curator_label", "family_tag", "layer__name"]
    raw_id_fields = ["layer"]


@admin.register(Technique)
class TechniqueAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "level"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "progress", "created", "finished", "result"]
    list_filter = ["status", "registry_key"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]
    actions = ["retry"]
    change_list_template = "admin/neurons/importjob/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="neurons_importjob_import"), *super().get_urls()]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context=None
    ) -> HttpResponse:  # type: ignore[no-untyped-def, override]
        return HttpResponseRedirect(reverse("admin:neurons_importjob_import"))

    def import_view(self, request: HttpRequest) -> HttpResponse:
        form = ImportModelForm(request.POST or None)
        if request.method == "POST" and form.is_valid() and "confirm" not in request.POST:
            # One more click, after reading what will happen (a download, for pretrained).
            context = {
                **self.admin_site.each_context(request),
                "title": "Confirm the import",
                "form": form,
                "summary": import_summary(form.cleaned_data),
                "opts": self.model._meta,
            }
            return render(request, "admin/neurons/importjob/import_confirm.html", context)
        if request.method == "POST" and form.is_valid():
            try:
                job = import_job_create(
                    registry_key=form.cleaned_data["registry_key"],
                    weights_source=form.cleaned_data["weights_source"],
                    seed=form.cleaned_data["seed"],
                    weights_path=form.cleaned_data["weights_path"],
                    requested_by=request.user,
                )
            except ImportFailed as error:
                form.add_error(None, str(error))
            else:
                self.message_user(request, f"Queued {job}; a worker imports it.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:neurons_importjob_change", args=[job.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Import model",
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/neurons/importjob/import.html", context)

    @admin.action(description="Retry the selected failed imports")
    def retry(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        for job in queryset:
            try:
                import_job_retry(job=job)
            except ImportFailed as error:
                self.message_user(request, str(error), messages.WARNING)
            else:
                self.message_user(request, f"Queued {job} again.", messages.SUCCESS)

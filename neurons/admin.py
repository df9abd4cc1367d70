from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse

from microscope_site.errors import Refused
from neurons.forms import ImportModelForm, import_summary
from neurons.models import ImportJob, Layer, NetworkModel, Technique, Unit
from neurons.services import ImportRefused, import_job_create, import_job_retry


@admin.register(NetworkModel)
class NetworkModelAdmin(admin.ModelAdmin):
    list_display = ["__str__", "display_name", "weights_source", "status", "created"]
    list_filter = ["slug", "weights_source", "status"]
    readonly_fields = ["slug", "version", "registry_key", "weights_sha256", "weights_source"]
    search_fields = ["slug", "display_name", "version"]


@admin.register(Layer)
class LayerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "num_units", "receptive_field", "receptive_field_stride"]
    list_filter = ["model"]
    search_fields = ["name"]


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
            except ImportRefused as error:
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
            except Refused as error:
                self.message_user(request, str(error), messages.WARNING)
            else:
                self.message_user(request, f"Queued {job} again.", messages.SUCCESS)

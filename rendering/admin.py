from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from rendering.models import Render, RenderJob
from rendering.services import RenderRefused, render_job_retry


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
            except RenderRefused as error:
                self.message_user(request, str(error), messages.WARNING)
            else:
                self.message_user(request, f"Queued {job} again.", messages.SUCCESS)

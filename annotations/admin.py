from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from annotations.errors import AnnotationRefused
from annotations.models import (
    Comment,
    CommentRevision,
    Institution,
    Invitation,
    Membership,
    Mention,
    Note,
    NoteEdge,
    NoteRevision,
    NoteUnit,
    Profile,
    Report,
)
from annotations.moderation import moderation_set_hidden


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Institution)
class InstitutionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "slug", "email_domains"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug", "email_domains"]
    inlines = [MembershipInline]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["user", "display_name", "institution", "email_confirmed"]
    search_fields = ["user__username", "display_name"]
    raw_id_fields = ["user"]


class NoteUnitInline(admin.TabularInline):  # type: ignore[type-arg]
    model = NoteUnit
    extra = 0
    raw_id_fields = ["unit"]


class NoteEdgeInline(admin.TabularInline):  # type: ignore[type-arg]
    model = NoteEdge
    extra = 0
    raw_id_fields = ["source", "target"]


class NoteRevisionInline(admin.TabularInline):  # type: ignore[type-arg]
    model = NoteRevision
    extra = 0
    fields = ["number", "author", "created", "title"]
    readonly_fields = ["number", "author", "created", "title"]
    can_delete = False


def _set_hidden(
    modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any], hidden: bool
) -> None:
    """The moderation service for each row; rows it refuses (what this moderator may not read
    on the site, such as another institution's institution-only notes) are counted, not done."""
    refused = 0
    for item in queryset:
        kind = "note" if isinstance(item, Note) else "comment"
        try:
            moderation_set_hidden(moderator=request.user, hidden=hidden, **{kind: item})
        except AnnotationRefused:
            refused += 1
    if refused:
        modeladmin.message_user(
            request,
            f"{refused} left unchanged: moderators act only on what they may read on the site",
            level=messages.WARNING,
        )


@admin.action(description="Hide from public pages")
def hide(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    _set_hidden(modeladmin, request, queryset, hidden=True)


@admin.action(description="Restore")
def restore(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    _set_hidden(modeladmin, request, queryset, hidden=False)


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["title", "author", "institution", "visibility", "published", "hidden"]
    list_filter = ["visibility", "hidden"]
    search_fields = ["title", "author__username"]
    readonly_fields = ["body_html", "created", "updated"]
    raw_id_fields = ["author"]
    inlines = [NoteUnitInline, NoteEdgeInline, NoteRevisionInline]
    actions = [hide, restore]


class CommentRevisionInline(admin.TabularInline):  # type: ignore[type-arg]
    model = CommentRevision
    extra = 0
    readonly_fields = ["body", "created"]
    can_delete = False


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["pk", "author", "unit", "note", "created", "deleted", "hidden"]
    list_filter = ["hidden"]
    readonly_fields = ["body_html", "created"]
    raw_id_fields = ["author", "unit", "note", "parent"]
    inlines = [CommentRevisionInline]
    actions = [hide, restore]


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["pk", "reporter", "note", "comment", "status", "created"]
    list_filter = ["status"]
    raw_id_fields = ["reporter", "note", "comment", "resolved_by"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["email", "institution", "invited_by", "created", "accepted", "accepted_by"]
    list_filter = ["institution"]
    search_fields = ["email"]
    raw_id_fields = ["invited_by", "accepted_by"]


admin.site.register(Mention)

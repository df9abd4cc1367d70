"""API endpoints for notes, comments, reports, curator labels, institutions and tokens.

Reads start from `annotations.selectors` (the visibility rules live there once); writes call
the same services as the pages (`annotations.notes`, `.comments`, `.moderation`), so the API
has the pages' rules, sanitizing and rate limits. A note or comment the caller may not see
answers 404, as on the pages.
"""

from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from annotations import selectors
from annotations.comments import comment_create, comment_delete, comment_update
from annotations.models import ApiToken, Comment, Institution, Note, NoteEdge, NoteUnit, Report
from annotations.moderation import moderation_set_hidden, report_create, unit_label_set
from annotations.notes import note_create, note_editable_fields, note_publish, note_update
from annotations.search import notes_version
from annotations.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenSerializer,
    CommentCreateSerializer,
    CommentSerializer,
    CommentUpdateSerializer,
    InstitutionSerializer,
    ModeratedSerializer,
    ModerationSerializer,
    NoteCreateSerializer,
    NoteSerializer,
    NoteUpdateSerializer,
    ReportCreateSerializer,
    ReportListSerializer,
    ReportSerializer,
    UnitLabelSerializer,
)
from annotations.tokens import token_create, token_revoke, tokens_of
from microscope_site.api_errors import ERROR_SERIALIZERS
from microscope_site.api_queries import (
    BooleanFilter,
    IdFilter,
    KeysetCursorPagination,
    StrictFilterSet,
    refuse_unknown_query_params,
)
from neurons import selectors as catalogue
from neurons.apicache import CatalogueCachedReads
from neurons.idempotency import idempotent
from neurons.models import NetworkModel, Unit
from neurons.serializers import UnitSerializer


class TokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Tells the schema how `annotations.tokens.TokenAuthentication` reads its header."""

    target_class = "annotations.tokens.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <secret>`: a personal API token (read or write scope)",
        }


# --- moderation (curators of any institution, and staff) ---------------------------------


def _refuse_non_moderator(user: Any) -> None:
    if not selectors.is_moderator(user):
        raise exceptions.PermissionDenied("only curators and staff moderate")


def _moderated_notes(user: Any) -> QuerySet[Note]:
    """What a moderator may act on: what they could see, hidden notes included (a curator
    never reaches another institution's institution-only notes, nor anyone's drafts)."""
    return selectors.notes_visible_to(user, include_hidden=True)


def _moderate(
    request: Request, *, note: Note | None = None, comment: Comment | None = None
) -> Response:
    form = ModerationSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    hidden = form.validated_data["hidden"]
    moderation_set_hidden(moderator=request.user, hidden=hidden, note=note, comment=comment)
    target: Note | Comment = note if note is not None else comment  # type: ignore[assignment]
    return Response(ModeratedSerializer({"id": target.pk, "hidden": target.hidden}).data)


MODERATION_SCHEMA = extend_schema(
    summary="Hide or restore (curators and staff); closes or reopens its reports",
    request=ModerationSerializer,
    responses=ModeratedSerializer,
    filters=False,
)


# --- notes ----------------------------------------------------------------------------------


class NoteFilter(StrictFilterSet):
    unit = IdFilter(field_name="note_units__unit", label="about this unit (id)")
    author = filters.CharFilter(field_name="author__username", label="author's username")
    institution = filters.CharFilter(field_name="institution__slug", label="institution slug")
    draft = BooleanFilter(field_name="published", lookup_expr="isnull", label="drafts")

    class Meta:
        model = Note
        fields = ["visibility"]


NOTE_UNIT_FIELDS = (
    "note_id",
    "position",
    "role",
    "unit__index",
    "unit__layer__name",
    "unit__layer__model__slug",
    "unit__layer__model__version",
)


def _with_parts(notes: QuerySet[Note]) -> QuerySet[Note]:
    return selectors.with_people(notes).prefetch_related(
        Prefetch(
            "note_units",
            # Only what a unit's key needs: a page of notes lists hundreds of units, and
            # building full model rows for each was most of its time.
            queryset=NoteUnit.objects.select_related("unit__layer__model")
            .only(*NOTE_UNIT_FIELDS)
            .order_by("position"),
        ),
        Prefetch("edges", queryset=NoteEdge.objects.order_by("pk")),
    )


def _unit(pk: int) -> Unit:
    try:
        return catalogue.unit_by_id(pk)
    except Unit.DoesNotExist:
        raise Http404("No Unit matches the given query.") from None  # as get_object_or_404


def _visible_note(user: Any, pk: int) -> Note:
    note = get_object_or_404(_with_parts(Note.objects.all()), pk=pk)
    if not selectors.note_visible(note, user):
        raise exceptions.NotFound("No such note.")
    return note


@extend_schema_view(
    list=extend_schema(summary="Notes you may see: public ones, your institutions', your own"),
    create=extend_schema(request=NoteCreateSerializer, responses={201: NoteSerializer}),
    update=extend_schema(request=NoteUpdateSerializer, responses=NoteSerializer),
    partial_update=extend_schema(request=NoteUpdateSerializer, responses=NoteSerializer),
)
class NoteViewSet(
    CatalogueCachedReads,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Note],
):
    serializer_class = NoteSerializer
    filterset_class = NoteFilter
    ordering = "-pk"  # newest first
    ordering_fields = ["pk", "created"]
    queryset = Note.objects.none()  # per request: what the caller may see
    # The notes' version changes with every write that could change what a reader sees
    # (their units' keys and the authors' names move with the catalogue version and
    # `profile_update`); whom a note shows to is `cache_scope`.
    cache_versions = (notes_version,)

    def cache_scope(self, request: Request) -> str:
        """What `notes_visible_to` and `note_visible` read of the reader: who they are, their
        institutions, and whether they moderate (moderators open hidden notes)."""
        user = request.user
        if not user.is_authenticated:
            return "anonymous"
        institutions = sorted(selectors.institutions_of(user))
        return f"user {user.pk} of {institutions} moderator {selectors.is_moderator(user)}"

    def get_queryset(self) -> QuerySet[Note]:
        return _with_parts(selectors.notes_visible_to(self.request.user)).distinct()

    def get_object(self) -> Note:
        refuse_unknown_query_params(self.request, self)
        pk = str(self.kwargs["pk"])
        if not pk.isdigit():
            raise Http404("no such note")
        return _visible_note(self.request.user, int(pk))

    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = NoteCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        note = note_create(
            author=request.user,
            title=data["title"],
            body=data["body"],
            units="\n".join(data["units"]),
            edges="\n".join(data["edges"]),
            visibility=data["visibility"],
            publish=data["publish"],
        )
        return self._answer(request, note, status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        note = self.get_object()
        form = NoteUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        current = note_editable_fields(note)
        data = form.validated_data
        for name in ("units", "edges"):
            if name in data:
                data[name] = "\n".join(data[name])
        merged = {**current, **data}
        note_update(
            note=note,
            editor=request.user,
            title=merged["title"],
            body=merged["body"],
            units=merged["units"],
            edges=merged["edges"],
            visibility=merged["visibility"],
        )
        return self._answer(request, note, status.HTTP_200_OK)

    @extend_schema(summary="Publish a draft (its author)", request=None, responses=NoteSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: int) -> Response:
        note = note_publish(note=self.get_object(), user=request.user)
        return self._answer(request, note, status.HTTP_200_OK)

    @MODERATION_SCHEMA
    @action(detail=True, methods=["post"], filterset_class=None, pagination_class=None)
    def moderation(self, request: Request, pk: str) -> Response:
        _refuse_non_moderator(request.user)
        if not str(pk).isdigit():
            raise Http404("no such note")
        note = get_object_or_404(_moderated_notes(request.user), pk=int(pk))
        return _moderate(request, note=note)

    def _answer(self, request: Request, note: Note, code: int) -> Response:
        fresh = _with_parts(Note.objects.all()).get(pk=note.pk)
        data = NoteSerializer(fresh, context=self.get_serializer_context()).data
        # str(): the serializer's `url` is DRF's Hyperlink, a str subclass that WSGI servers
        # checking `type(value) is str` (wsgiref, so `runserver`) refuse as a header value.
        headers = {"Location": str(data["url"])} if code == status.HTTP_201_CREATED else {}
        return Response(data, status=code, headers=headers)


# --- comments -------------------------------------------------------------------------------


class CommentFilter(StrictFilterSet):
    author = filters.CharFilter(field_name="author__username", label="author's username")
    unit = IdFilter(field_name="unit", label="unit id")
    note = IdFilter(field_name="note", label="note id")
    parent = IdFilter(field_name="parent", label="parent id")

    class Meta:
        model = Comment
        fields = ["unit", "note", "parent"]


def _visible_comments(user: Any) -> QuerySet[Comment]:
    """Comments on units (the unit pages show them to everyone) and on notes the user may see."""
    return Comment.objects.filter(
        Q(unit__isnull=False) | Q(note__in=selectors.notes_visible_to(user).values("pk"))
    ).select_related("author__profile")


@extend_schema_view(
    create=extend_schema(
        summary="Comment on a unit or a note, or reply to a comment",
        description="Give exactly one of `unit`, `note` and `parent` (a 400 otherwise); a "
        "unit, note or comment that does not exist or that you may not see is a 404.",
        request=CommentCreateSerializer,
        responses={201: CommentSerializer, 404: ERROR_SERIALIZERS[404]},
    ),
    update=extend_schema(request=CommentUpdateSerializer, responses=CommentSerializer),
    partial_update=extend_schema(
        summary="Edit your comment: only the fields given change",
        request=CommentUpdateSerializer,
        responses=CommentSerializer,
    ),
    destroy=extend_schema(summary="Delete your comment (its thread keeps a placeholder)"),
)
class CommentViewSet(viewsets.ModelViewSet[Comment]):
    serializer_class = CommentSerializer
    filterset_class = CommentFilter
    ordering = "pk"
    ordering_fields = ["pk", "created"]
    queryset = Comment.objects.none()

    def get_queryset(self) -> QuerySet[Comment]:
        return _visible_comments(self.request.user)

    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = CommentCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        user = request.user
        where: dict[str, Any] = {}
        if data.get("unit") is not None:
            # With its layer and model, which the comment's Markdown links resolve against,
            # from SQL built once (an ORM `get` cost ~1.5 ms of CPU on every comment posted).
            where["unit"] = _unit(data["unit"])
        elif data.get("note") is not None:
            where["note"] = _visible_note(user, data["note"])
        else:
            where["parent"] = get_object_or_404(_visible_comments(user), pk=data["parent"])
        comment = comment_create(author=user, body=data["body"], **where)
        body = CommentSerializer(comment, context=self.get_serializer_context()).data
        location = str(body["url"])  # a plain str, not DRF's Hyperlink (see NoteViewSet._answer)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        comment = self.get_object()
        form = CommentUpdateSerializer(data=request.data, partial=kwargs.get("partial", False))
        form.is_valid(raise_exception=True)
        if "body" in form.validated_data:  # PATCH without `body` changes nothing
            comment_update(comment=comment, editor=request.user, body=form.validated_data["body"])
        return Response(CommentSerializer(comment, context=self.get_serializer_context()).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        comment_delete(comment=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @MODERATION_SCHEMA
    @action(detail=True, methods=["post"], filterset_class=None, pagination_class=None)
    def moderation(self, request: Request, pk: str) -> Response:
        _refuse_non_moderator(request.user)
        if not str(pk).isdigit():
            raise Http404("no such comment")
        comments = Comment.objects.filter(
            Q(note__isnull=True) | Q(note__in=_moderated_notes(request.user).values("pk"))
        )
        return _moderate(request, comment=get_object_or_404(comments, pk=int(pk)))


class NewestFirst(KeysetCursorPagination):
    ordering = "-pk"


class ReportView(generics.GenericAPIView[Any]):
    """Report a note or a comment to the moderators; moderators list the open reports."""

    serializer_class = ReportCreateSerializer
    queryset = Report.objects.none()
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = NewestFirst
    filter_backends: list[Any] = []

    @extend_schema(
        summary="Open reports about what you may see (curators and staff), newest first",
        responses=ReportListSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        _refuse_non_moderator(request.user)
        refuse_unknown_query_params(request, self)
        # The moderation queue's rule: only reports about what this moderator may see.
        seen = _moderated_notes(request.user).values("pk")
        reports = (
            Report.objects.filter(status=Report.Status.OPEN)
            .filter(
                Q(note__in=seen)
                | Q(comment__isnull=False, comment__note__isnull=True)
                | Q(comment__note__in=seen)
            )
            .select_related("reporter")
        )
        page = self.paginate_queryset(reports)
        data = ReportListSerializer(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    @extend_schema(
        summary="Report a note or a comment",
        description="Give exactly one of `note` and `comment` (a 400 otherwise). A note or "
        "comment you may not see is a 404.",
        request=ReportCreateSerializer,
        responses={201: ReportSerializer, 404: ERROR_SERIALIZERS[404]},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        form = self.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        user = request.user
        if data.get("note") is not None:
            target: dict[str, Any] = {"note": _visible_note(user, data["note"])}
        else:
            target = {"comment": get_object_or_404(_visible_comments(user), pk=data["comment"])}
        report = report_create(reporter=user, reason=data["reason"], **target)
        body = {"id": report.pk, "status": report.status, "created": report.created}
        return Response(ReportSerializer(body).data, status=status.HTTP_201_CREATED)


# --- curator labels -------------------------------------------------------------------------


class IsModerator(permissions.BasePermission):
    message = "only curators and staff label units"

    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.is_moderator(request.user)


class UnitLabelView(generics.GenericAPIView[Unit]):
    queryset = Unit.objects.filter(layer__model__status=NetworkModel.Status.READY).select_related(
        "layer__model"
    )
    serializer_class = UnitLabelSerializer
    permission_classes = [permissions.IsAuthenticated, IsModerator]
    pagination_class = None
    filter_backends: list[Any] = []

    @extend_schema(
        summary="Set a unit's curator label (staff and curators)",
        request=UnitLabelSerializer,
        responses=UnitSerializer,
    )
    def put(self, request: Request, pk: int) -> Response:
        unit = self.get_object()
        form = self.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        unit_label_set(unit=unit, label=form.validated_data["curator_label"], user=request.user)
        return Response(UnitSerializer(unit, context=self.get_serializer_context()).data)


# --- institutions ---------------------------------------------------------------------------


class InstitutionViewSet(viewsets.ReadOnlyModelViewSet[Institution]):
    queryset = Institution.objects.all()
    serializer_class = InstitutionSerializer
    lookup_field = "slug"
    ordering = "pk"
    ordering_fields = ["name", "pk"]


# --- tokens ---------------------------------------------------------------------------------


class TokenCreateSerializer(ApiTokenSerializer):
    class Meta(ApiTokenSerializer.Meta):
        fields = ["name", "scope", "expires"]


@extend_schema_view(
    list=extend_schema(summary="Your API tokens (never their secrets)"),
    create=extend_schema(
        summary="Make a token (from a signed-in session): the secret is in this answer only",
        request=TokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer},
    ),
    destroy=extend_schema(summary="Revoke a token: it stops working at once"),
)
class TokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[ApiToken],
):
    serializer_class = ApiTokenSerializer
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["scope"]
    ordering = "pk"
    ordering_fields = ["pk", "created"]
    queryset = ApiToken.objects.none()

    def get_queryset(self) -> QuerySet[ApiToken]:
        return tokens_of(self.request.user)

    def get_serializer_class(self) -> type[BaseSerializer[ApiToken]]:
        return TokenCreateSerializer if self.action == "create" else ApiTokenSerializer

    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if isinstance(request.auth, ApiToken):
            # A leaked token must not be able to mint longer-lived ones.
            raise exceptions.PermissionDenied("make tokens from a signed-in session, not a token")
        form = TokenCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        token, secret = token_create(user=request.user, **form.validated_data)
        data = dict(ApiTokenCreatedSerializer(token, context=self.get_serializer_context()).data)
        data["secret"] = secret
        location = request.build_absolute_uri(reverse("api:token-detail", kwargs={"pk": token.pk}))
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        token_revoke(token=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

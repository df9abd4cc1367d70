"""Notes, comments, reports, institutions and API tokens as the API shows and takes them."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotations import selectors
from annotations.models import (
    COMMENT_BODY_MAX,
    NOTE_BODY_MAX,
    REASON_MAX,
    TITLE_MAX,
    ApiToken,
    Comment,
    Institution,
    Note,
    Report,
)
from microscope_site.api_queries import BIGINT_MAX
from microscope_site.links import reverse_kept
from neurons.serializers import absolute, unit_api_path, unit_key

# Ids in a body are bounded as in a query string: 10**25 is a 400, not an OverflowError.
ID: dict[str, int] = {"min_value": 1, "max_value": BIGINT_MAX}


class PersonSerializer(serializers.Serializer[Any]):
    username = serializers.CharField()
    name = serializers.CharField()
    url = serializers.URLField(help_text="the person's page")


def person(context: dict[str, Any], user: Any) -> dict[str, str]:
    username = user.get_username()
    return {
        "username": username,
        "name": selectors.author_name(user),
        "url": absolute(context, reverse_kept("annotations:person", kwargs={"username": username})),
    }


class NoteUnitSerializer(serializers.Serializer[Any]):
    unit = serializers.IntegerField(help_text="the unit's id")
    key = serializers.CharField(help_text="model@version/layer/index")
    url = serializers.URLField()
    role = serializers.CharField()


class NoteEdgeSerializer(serializers.Serializer[Any]):
    source = serializers.IntegerField(help_text="unit id")
    target = serializers.IntegerField(help_text="unit id")
    kind = serializers.ChoiceField(choices=["excitatory", "inhibitory"])
    strength = serializers.FloatField(allow_null=True)


class NoteSerializer(serializers.ModelSerializer[Note]):
    url = serializers.HyperlinkedIdentityField(view_name="api:note-detail")
    html_url = serializers.SerializerMethodField(help_text="the note's permalink")
    author = serializers.SerializerMethodField()
    institution = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    units = serializers.SerializerMethodField()
    edges = serializers.SerializerMethodField()
    comments_url = serializers.SerializerMethodField()

    class Meta:
        model = Note
        fields = [
            "id",
            "url",
            "html_url",
            "title",
            "body",
            "body_html",
            "visibility",
            "published",
            "hidden",
            "author",
            "institution",
            "units",
            "edges",
            "comments_url",
            "created",
            "updated",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_html_url(self, note: Note) -> str:
        return absolute(self.context, note.get_absolute_url())

    @extend_schema_field(PersonSerializer)
    def get_author(self, note: Note) -> dict[str, str]:
        return person(self.context, note.author)

    @extend_schema_field(NoteUnitSerializer(many=True))
    def get_units(self, note: Note) -> list[dict[str, Any]]:
        return [
            {
                "unit": row.unit_id,
                "key": unit_key(row.unit),
                "url": absolute(self.context, unit_api_path(row.unit_id)),
                "role": row.role,
            }
            for row in note.note_units.all()
        ]

    @extend_schema_field(NoteEdgeSerializer(many=True))
    def get_edges(self, note: Note) -> list[dict[str, Any]]:
        return [
            {"source": e.source_id, "target": e.target_id, "kind": e.kind, "strength": e.strength}
            for e in note.edges.all()
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_comments_url(self, note: Note) -> str:
        return absolute(self.context, reverse_kept("api:comment-list") + f"?note={note.pk}")


class NoteWriteSerializer(serializers.Serializer[Any]):
    title = serializers.CharField(max_length=TITLE_MAX)
    body = serializers.CharField(max_length=NOTE_BODY_MAX, help_text="Markdown")
    units = serializers.ListField(
        child=serializers.CharField(max_length=200),
        help_text="one unit each, `model[@version]/layer/index` or a shorthand such as "
        "`inceptionv1 4c:447`, optionally followed by `, role`",
    )
    edges = serializers.ListField(
        child=serializers.CharField(max_length=40),
        required=False,
        default=list,
        help_text="`1 -> 2` excites, `1 -| 2` inhibits (positions in `units`, from 1), with an "
        "optional strength after it",
    )
    visibility = serializers.ChoiceField(choices=Note.Visibility.choices, default="private")


class NoteCreateSerializer(NoteWriteSerializer):
    publish = serializers.BooleanField(default=False, help_text="publish at once (else a draft)")


class NoteUpdateSerializer(NoteWriteSerializer):
    """Fields left out keep their current values."""

    title = serializers.CharField(max_length=TITLE_MAX, required=False)
    body = serializers.CharField(max_length=NOTE_BODY_MAX, required=False)
    units = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    edges = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    visibility = serializers.ChoiceField(choices=Note.Visibility.choices, required=False)


class CommentSerializer(serializers.ModelSerializer[Comment]):
    url = serializers.HyperlinkedIdentityField(view_name="api:comment-detail")
    html_url = serializers.SerializerMethodField()
    author = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField(help_text="shown, deleted or hidden")
    body = serializers.SerializerMethodField(
        help_text="null when deleted or hidden, except for its author and moderators"
    )
    body_html = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = [
            "id",
            "url",
            "html_url",
            "unit",
            "note",
            "parent",
            "author",
            "state",
            "body",
            "body_html",
            "created",
            "edited",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_html_url(self, comment: Comment) -> str:
        return absolute(self.context, comment.get_absolute_url())

    @extend_schema_field(PersonSerializer)
    def get_author(self, comment: Comment) -> dict[str, str]:
        return person(self.context, comment.author)

    @extend_schema_field(serializers.ChoiceField(choices=["shown", "deleted", "hidden"]))
    def get_state(self, comment: Comment) -> str:
        if comment.deleted is not None:
            return "deleted"
        return "hidden" if comment.hidden else "shown"

    def _readable(self, comment: Comment) -> bool:
        if comment.shown:
            return True
        request = self.context.get("request")
        user = request.user if request is not None else None
        if user is None or not user.is_authenticated:
            return False
        if "is_moderator" not in self.context:
            self.context["is_moderator"] = selectors.is_moderator(user)
        return bool(comment.author_id == user.pk or self.context["is_moderator"])

    def get_body(self, comment: Comment) -> str | None:
        return comment.body if self._readable(comment) else None

    def get_body_html(self, comment: Comment) -> str | None:
        return comment.body_html if self._readable(comment) else None


class CommentCreateSerializer(serializers.Serializer[Any]):
    """Exactly one of unit, note and parent (a reply joins its parent's thread)."""

    unit = serializers.IntegerField(**ID, required=False, help_text="unit id")
    note = serializers.IntegerField(**ID, required=False, help_text="note id")
    parent = serializers.IntegerField(**ID, required=False, help_text="comment id to reply to")
    body = serializers.CharField(max_length=COMMENT_BODY_MAX, help_text="Markdown")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in ("unit", "note", "parent") if attrs.get(name) is not None]
        if len(given) != 1:
            raise serializers.ValidationError("give exactly one of unit, note and parent")
        return attrs


class CommentUpdateSerializer(serializers.Serializer[Any]):
    """PATCH may leave `body` out (nothing changes); PUT gives it."""

    body = serializers.CharField(max_length=COMMENT_BODY_MAX, help_text="Markdown")


class ReportCreateSerializer(serializers.Serializer[Any]):
    note = serializers.IntegerField(**ID, required=False, help_text="note id")
    comment = serializers.IntegerField(**ID, required=False, help_text="comment id")
    reason = serializers.CharField(max_length=REASON_MAX)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (attrs.get("note") is None) == (attrs.get("comment") is None):
            raise serializers.ValidationError("give exactly one of note and comment")
        return attrs


class ReportSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    status = serializers.CharField()
    created = serializers.DateTimeField()


class ReportListSerializer(serializers.ModelSerializer[Report]):
    status = serializers.CharField(read_only=True, help_text="open, hidden or dismissed")
    reporter = serializers.CharField(source="reporter.username", read_only=True)
    note_url = serializers.SerializerMethodField()
    comment_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id",
            "status",
            "reason",
            "reporter",
            "note",
            "note_url",
            "comment",
            "comment_url",
            "created",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_note_url(self, report: Report) -> str | None:
        if report.note_id is None:
            return None
        return absolute(
            self.context, reverse_kept("api:note-detail", kwargs={"pk": report.note_id})
        )

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_comment_url(self, report: Report) -> str | None:
        if report.comment_id is None:
            return None
        path = reverse_kept("api:comment-detail", kwargs={"pk": report.comment_id})
        return absolute(self.context, path)


class ModerationSerializer(serializers.Serializer[Any]):
    hidden = serializers.BooleanField(
        help_text="true hides it (closing its reports); false restores"
    )


class ModeratedSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    hidden = serializers.BooleanField()


class InstitutionSerializer(serializers.ModelSerializer[Institution]):
    url = serializers.HyperlinkedIdentityField(
        view_name="api:institution-detail", lookup_field="slug"
    )
    html_url = serializers.SerializerMethodField()
    domains = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Institution
        fields = ["slug", "name", "url", "html_url", "domains", "created"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_html_url(self, institution: Institution) -> str:
        return absolute(self.context, institution.get_absolute_url())


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    url = serializers.HyperlinkedIdentityField(view_name="api:token-detail")

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "url",
            "name",
            "scope",
            "prefix",
            "expires",
            "created",
            "last_used",
            "revoked",
        ]
        read_only_fields = ["prefix", "created", "last_used", "revoked"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="shown this once: only its sha256 is stored"
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "secret"]


class UnitLabelSerializer(serializers.Serializer[Any]):
    curator_label = serializers.CharField(max_length=200, allow_blank=True)

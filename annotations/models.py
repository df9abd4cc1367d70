"""People and what they write about units: institutions, circuit notes, comments, reports.

Bodies are stored twice: the author's Markdown (`body`, what revisions and edits use) and the
sanitized HTML it renders to (`body_html`, the only thing pages print). Nothing is ever deleted
by moderation or by authors: hidden and deleted rows stay, and pages leave them out.
"""

from typing import Any

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models

from annotations.bidi import strip_bidi
from microscope_site.links import reverse_kept
from neurons.models import Unit

TITLE_MAX = 200
NOTE_BODY_MAX = 20_000
COMMENT_BODY_MAX = 5_000
REASON_MAX = 1_000


class Institution(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    email_domains = models.TextField(
        blank=True,
        help_text="verified email domains, one per line: people who confirm an address at one "
        "of them (through a link sent to it) become members",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name = strip_bidi(self.name).strip()  # staff type it; pages print it by every name
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse_kept("annotations:institution", kwargs={"slug": self.slug})

    @property
    def domains(self) -> list[str]:
        return [d.strip().lower() for d in self.email_domains.split() if d.strip()]


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "member"
        CURATOR = "curator", "curator"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    institution = models.ForeignKey(
        Institution, on_delete=models.CASCADE, related_name="memberships"
    )

    class Source(models.TextChoices):
        DOMAIN = "domain", "a confirmed address at its domain"
        INVITATION = "invitation", "an invitation by its curators"
        ADMIN = "admin", "added by staff"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    source = models.CharField(
        max_length=16,
        choices=Source.choices,
        default=Source.ADMIN,
        help_text="how the person joined; memberships by domain end when their address changes",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "institution"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.institution} ({self.role})"


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    display_name = models.CharField(max_length=100, blank=True)
    institution = models.ForeignKey(
        Institution,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the affiliation shown beside the person's work (one of their memberships)",
    )
    email_confirmed = models.EmailField(
        blank=True,
        help_text="the address its owner confirmed through a signed link sent to it (lower "
        "case); empty until then, and again when the address changes",
    )

    def __str__(self) -> str:
        return self.display_name or self.user.get_username()

    def get_absolute_url(self) -> str:
        return reverse_kept("annotations:person", kwargs={"username": self.user.get_username()})


class Invitation(models.Model):
    """A curator's invitation to join an institution, mailed to an address as a signed link;
    accepting it, signed in with that address, makes a member."""

    institution = models.ForeignKey(
        Institution, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(help_text="lower case")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    accepted = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"{self.email} to {self.institution}"


class Note(models.Model):
    """A circuit note: Markdown about some units and the typed edges between them."""

    class Visibility(models.TextChoices):
        PUBLIC = "public", "public"
        INSTITUTION = "institution", "my institution only"
        PRIVATE = "private", "private (only me)"

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notes"
    )
    institution = models.ForeignKey(
        Institution,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notes",
        help_text="the author's affiliation when written; institution-only notes are for its "
        "members",
    )
    title = models.CharField(max_length=TITLE_MAX)
    body = models.TextField(help_text="Markdown, as written")
    body_html = models.TextField(help_text="sanitized HTML rendered from body")
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    published = models.DateTimeField(
        null=True, blank=True, help_text="empty while a draft: only the author sees it"
    )
    hidden = models.BooleanField(default=False, help_text="hidden by a moderator")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    # On PostgreSQL a trigger keeps it (title weighted A, body B) on every insert and update,
    # whatever writes the row, and a GIN index serves `annotations.search` (migration 0004);
    # searching no longer parses every note's text. Unused (empty) on SQLite.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["-published", "-created"]
        indexes = [
            models.Index(fields=["visibility", "hidden", "-published"]),
            # The newest `updated` is half of `notes_version`, asked on every search page.
            models.Index(fields=["updated"], name="note_updated"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse_kept("annotations:note", kwargs={"pk": self.pk})

    @property
    def is_public(self) -> bool:
        return (
            self.published is not None
            and self.visibility == self.Visibility.PUBLIC
            and not self.hidden
        )


class NoteUnit(models.Model):
    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="note_units")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="note_units")
    position = models.PositiveSmallIntegerField()
    role = models.CharField(max_length=40, blank=True, help_text="input, output, inhibitor, …")

    class Meta:
        ordering = ["note", "position"]
        constraints = [
            models.UniqueConstraint(fields=["note", "unit"], name="noteunit_note_unit_unique"),
            models.UniqueConstraint(fields=["note", "position"], name="noteunit_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.unit} in note {self.note_id}"


class NoteEdge(models.Model):
    class Kind(models.TextChoices):
        EXCITATORY = "excitatory", "excitatory"
        INHIBITORY = "inhibitory", "inhibitory"

    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="edges")
    source = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    strength = models.FloatField(
        null=True, blank=True, help_text="from the stored connections when they have it"
    )

    class Meta:
        ordering = ["note", "pk"]

    def __str__(self) -> str:
        return f"{self.source} → {self.target} ({self.kind})"


class NoteRevision(models.Model):
    """One saved state of a note, written on every create and edit; never changed."""

    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    title = models.CharField(max_length=TITLE_MAX)
    body = models.TextField()
    units = models.TextField(help_text="the units field as written, normalized")
    edges = models.TextField(help_text="the edges field as written, normalized")
    visibility = models.CharField(max_length=16, choices=Note.Visibility.choices)

    class Meta:
        ordering = ["note", "number"]
        constraints = [
            models.UniqueConstraint(fields=["note", "number"], name="noterevision_unique")
        ]

    def __str__(self) -> str:
        return f"{self.note} r{self.number}"

    def get_absolute_url(self) -> str:
        return reverse_kept(
            "annotations:note-revision", kwargs={"pk": self.note_id, "number": self.number}
        )


class Comment(models.Model):
    """A comment on a unit or on a note; replies point at their parent."""

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comments"
    )
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    note = models.ForeignKey(
        Note, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    body = models.TextField()
    body_html = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
    edited = models.DateTimeField(null=True, blank=True)
    deleted = models.DateTimeField(null=True, blank=True, help_text="soft delete by the author")
    hidden = models.BooleanField(default=False, help_text="hidden by a moderator")

    class Meta:
        ordering = ["created", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(unit__isnull=False, note__isnull=True))
                | (models.Q(unit__isnull=True, note__isnull=False)),
                name="comment_on_unit_or_note",
            )
        ]
        indexes = [
            models.Index(fields=["unit", "created"]),
            models.Index(fields=["note", "created"]),
        ]

    def __str__(self) -> str:
        return f"comment {self.pk} by {self.author}"

    def get_absolute_url(self) -> str:
        if self.note_id is not None:
            base = reverse_kept("annotations:note", kwargs={"pk": self.note_id})
        else:
            base = reverse_kept("annotations:unit-discussion", kwargs={"unit_id": self.unit_id})
        return f"{base}#comment-{self.pk}"

    @property
    def shown(self) -> bool:
        return self.deleted is None and not self.hidden


class CommentRevision(models.Model):
    """The body a comment had before an edit (the current body is on the comment)."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="revisions")
    body = models.TextField()
    created = models.DateTimeField(help_text="when this body was written")

    class Meta:
        ordering = ["comment", "created"]

    def __str__(self) -> str:
        return f"comment {self.comment_id} as of {self.created:%Y-%m-%d %H:%M}"


class Report(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "open"
        HIDDEN = "hidden", "content hidden"
        DISMISSED = "dismissed", "dismissed"

    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports"
    )
    note = models.ForeignKey(
        Note, null=True, blank=True, on_delete=models.CASCADE, related_name="reports"
    )
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.CASCADE, related_name="reports"
    )
    reason = models.TextField(max_length=REASON_MAX)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created = models.DateTimeField(auto_now_add=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(note__isnull=False, comment__isnull=True))
                | (models.Q(note__isnull=True, comment__isnull=False)),
                name="report_on_note_or_comment",
            )
        ]

    def __str__(self) -> str:
        return f"report {self.pk} ({self.status})"


class Mention(models.Model):
    """`@username` in a published note or a comment: the mentioned person's inbox."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentions"
    )
    note = models.ForeignKey(
        Note, null=True, blank=True, on_delete=models.CASCADE, related_name="mentions"
    )
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.CASCADE, related_name="mentions"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"mention of {self.user}"


class ApiToken(models.Model):
    """A personal API token. Only the sha256 of its secret is stored; the secret itself is shown
    once, when the token is made. `prefix` (the secret's first characters, not secret) finds
    the row without scanning every hash."""

    class Scope(models.TextChoices):
        READ = "read", "read"
        WRITE = "write", "read and write"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=16, unique=True)
    secret_sha256 = models.CharField(max_length=64)
    expires = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.scope})"

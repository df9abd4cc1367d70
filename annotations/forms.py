"""Forms check shape and length; the services check the rules and the references."""

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from annotations.bidi import strip_bidi
from annotations.models import (
    COMMENT_BODY_MAX,
    NOTE_BODY_MAX,
    REASON_MAX,
    TITLE_MAX,
    Institution,
    Note,
)
from annotations.note_units import MAX_EDGES, MAX_UNITS


class SignupForm(UserCreationForm):  # type: ignore[type-arg]
    email = forms.EmailField(
        help_text="an address at your institution's domain makes you one of its members once "
        "you confirm it (we email you a link)"
    )
    display_name = forms.CharField(max_length=100, required=False)

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email", "display_name")

    def clean_email(self) -> str:
        email: str = strip_bidi(self.cleaned_data["email"]).strip().lower()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("an account with this address exists; log in instead")
        return email


class EmailForm(forms.Form):
    email = forms.EmailField(
        label="New address",
        help_text="memberships by your present address's domain end until you confirm the new one",
    )


class ProfileForm(forms.Form):
    display_name = forms.CharField(max_length=100, required=False)
    institution = forms.ModelChoiceField(
        queryset=Institution.objects.none(), required=False, label="Affiliation shown"
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["institution"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Institution.objects.filter(memberships__user=user)


class NoteForm(forms.Form):
    title = forms.CharField(max_length=TITLE_MAX)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14}),
        max_length=NOTE_BODY_MAX,
        help_text="Markdown. Raw HTML is shown as text.",
    )
    units = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        max_length=MAX_UNITS * 120,
        help_text="One unit per line: inceptionv1/mixed4c/447 or inceptionv1 4c:447, "
        "optionally followed by a comma and its role (input, output, inhibitor, …).",
    )
    edges = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=MAX_EDGES * 40,
        help_text="One edge per line between units by their line number: `1 -> 2` excites, "
        "`1 -| 2` inhibits; an optional strength after it (otherwise the stored weight).",
    )
    visibility = forms.ChoiceField(choices=Note.Visibility.choices, initial=Note.Visibility.PUBLIC)


class CommentForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=COMMENT_BODY_MAX,
        label="Comment",
        help_text="Markdown; @username notifies someone.",
    )


class ReportForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=REASON_MAX)

from django.urls import path

from annotations import comment_views, membership_views, moderation_views, people_views, views
from annotations.feeds import PublicNotesFeed

app_name = "annotations"
urlpatterns = [
    path("accounts/signup/", people_views.signup, name="signup"),
    path("accounts/profile/", people_views.profile, name="profile"),
    path("accounts/confirm/<str:token>/", membership_views.email_confirm, name="email-confirm"),
    path("invitations/<str:token>/", membership_views.invitation, name="invitation"),
    path("notes/", views.note_list, name="notes"),
    path("notes/new/", views.note_create, name="note-create"),
    path("notes/feed/", PublicNotesFeed(), name="feed"),
    path("notes/<int:pk>/", views.note_detail, name="note"),
    path("notes/<int:pk>/edit/", views.note_edit, name="note-edit"),
    path("notes/<int:pk>/publish/", views.note_publish, name="note-publish"),
    path("notes/<int:pk>/history/", views.note_history, name="note-history"),
    path("notes/<int:pk>/r<int:number>/", views.note_revision, name="note-revision"),
    path("notes/<int:pk>/cite.json", views.note_cite_json, name="note-cite"),
    path("notes/<int:pk>/comment/", comment_views.note_comment, name="note-comment"),
    path("notes/<int:pk>/report/", moderation_views.note_report, name="note-report"),
    path("n/<int:pk>", views.note_short_link, name="note-short"),
    path("units/<int:unit_id>/discussion/", comment_views.unit_discussion, name="unit-discussion"),
    path("comments/<int:pk>/reply/", comment_views.comment_reply, name="comment-reply"),
    path("comments/<int:pk>/edit/", comment_views.comment_edit, name="comment-edit"),
    path("comments/<int:pk>/delete/", comment_views.comment_delete, name="comment-delete"),
    path("comments/<int:pk>/history/", comment_views.comment_history, name="comment-history"),
    path("comments/<int:pk>/report/", moderation_views.comment_report, name="comment-report"),
    path("moderation/", moderation_views.queue, name="moderation"),
    path(
        "moderation/<str:kind>/<int:pk>/",
        moderation_views.set_hidden,
        name="moderation-set-hidden",
    ),
    path(
        "moderation/reports/<int:pk>/dismiss/",
        moderation_views.report_dismiss,
        name="report-dismiss",
    ),
    path("people/<str:username>/", people_views.person, name="person"),
    path("institutions/", people_views.institution_list, name="institutions"),
    path("institutions/<slug:slug>/", people_views.institution_detail, name="institution"),
    path("me/inbox/", people_views.inbox, name="inbox"),
]

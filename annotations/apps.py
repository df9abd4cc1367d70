from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Annotations"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_save

        from annotations.membership import user_email_watch

        # Whatever changes an address (profile, admin, API, shell) ends its domain memberships.
        pre_save.connect(
            user_email_watch, sender=get_user_model(), dispatch_uid="annotations-email-watch"
        )

from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Annotations"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_save

        from annotations import export_tables
        from annotations.membership import user_email_watch
        from annotations.search import notes_matching, notes_version
        from annotations.sitemaps import NoteSitemap
        from neurons.search import SearchSection, search_section_register
        from neurons.sitemaps import SITEMAPS

        SITEMAPS["notes"] = NoteSitemap  # the catalogue's sitemap index lists the notes too
        export_tables.register()  # the public notes, in each model's bulk export
        search_section_register("notes", SearchSection(notes_matching, notes_version))

        # Whatever changes an address (profile, admin, API, shell) ends its domain memberships.
        pre_save.connect(
            user_email_watch, sender=get_user_model(), dispatch_uid="annotations-email-watch"
        )

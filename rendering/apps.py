from django.apps import AppConfig


class RenderingConfig(AppConfig):
    name = "rendering"
    verbose_name = "Rendering"

    def ready(self) -> None:
        from rendering import signals

        signals.connect()

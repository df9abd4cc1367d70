from django.apps import AppConfig


class RenderingConfig(AppConfig):
    name = "rendering"
    verbose_name = "Rendering"

    def ready(self) -> None:
        from rendering import export_tables, signals

        signals.connect()
        export_tables.register()  # renders, dataset examples, connections

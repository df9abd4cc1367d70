from django.apps import AppConfig


class RenderingConfig(AppConfig):
    name = "rendering"
    verbose_name = "Rendering"

    def ready(self) -> None:
        from neurons.panels import page_contents_register
        from rendering import export_tables, signals
        from rendering.panels import RenderingContents

        signals.connect()
        page_contents_register(RenderingContents())  # what fills the catalogue's pages
        export_tables.register()  # renders, dataset examples, connections

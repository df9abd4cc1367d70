from django.apps import AppConfig


class RenderingConfig(AppConfig):
    name = "rendering"
    verbose_name = "Rendering"

    def ready(self) -> None:
        from neurons.panels import page_contents_register
        from rendering import connections, examples, export_tables, signals, tuning
        from rendering.panels import RenderingContents
        from rendering.params import WEIGHT_TECHNIQUES
        from rendering.services import job_runner_register

        signals.connect()
        page_contents_register(RenderingContents())  # what fills the catalogue's pages
        export_tables.register()  # renders, dataset examples, connections
        job_runner_register(WEIGHT_TECHNIQUES, connections.connections_compute)
        job_runner_register(["examples"], examples.examples_compute)
        job_runner_register(["tuning"], tuning.tuning_compute)

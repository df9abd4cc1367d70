from django.apps import AppConfig


class NeuronsConfig(AppConfig):
    name = "neurons"
    verbose_name = "Models, layers and units"

    def ready(self) -> None:
        from neurons import signals

        signals.connect()

from django.apps import AppConfig


class NeuronsConfig(AppConfig):
    name = "neurons"
    verbose_name = "Models, layers and units"

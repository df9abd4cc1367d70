from django.urls import path, register_converter

from neurons import views


class ModelRefConverter:
    """`inceptionv1` or `inceptionv1@3f2a9c81d0b4`; any case and the registry key too
    (`InceptionV1`, `clip_rn50`): `selectors.model_get` answers those with a 301 to the slug."""

    regex = r"[A-Za-z0-9][A-Za-z0-9_-]*(?:@[0-9A-Fa-f]{4,16})?"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class LayerNameConverter:
    regex = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ModelRefConverter, "modelref")
register_converter(LayerNameConverter, "layername")

app_name = "neurons"
urlpatterns = [
    path("", views.model_list, name="models"),
    # Before the model pages: "compare" would otherwise be taken for a model slug.
    path("compare/", views.compare, name="compare"),
    path("<modelref:model>/", views.model_detail, name="model"),
    path("<modelref:model>/<layername:layer>/", views.layer_detail, name="layer"),
    path("<modelref:model>/<layername:layer>/<int:index>/", views.unit_detail, name="unit"),
    path(
        "<modelref:model>/<layername:layer>/<int:index>/cite.json",
        views.unit_cite_json,
        name="unit-cite",
    ),
    path("<modelref:model>/<layername:layer>/cite.json", views.layer_cite_json, name="layer-cite"),
    path("<modelref:model>/cite.json", views.model_cite_json, name="model-cite"),
]

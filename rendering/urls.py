"""Rendering's pages under the catalogue's /models/ URLs: the weight matrix between two layers,
and the "Render now" actions and status of unit and layer pages."""

from django.urls import path

import neurons.urls  # noqa: F401  (registers the modelref and layername converters)
from rendering import views_render, views_weights

app_name = "rendering"
urlpatterns = [
    path(
        "<modelref:model>/<layername:layer>/weights/",
        views_weights.layer_weights,
        name="layer-weights",
    ),
    path(
        "<modelref:model>/<layername:layer>/weights.png",
        views_weights.layer_weights_png,
        name="layer-weights-png",
    ),
    path(
        "<modelref:model>/<layername:layer>/weights.npy",
        views_weights.layer_weights_npy,
        name="layer-weights-npy",
    ),
    path(
        "<modelref:model>/<layername:layer>/weights/<int:index>.json",
        views_weights.layer_weights_row,
        name="layer-weights-row",
    ),
    path(
        "<modelref:model>/<layername:layer>/<int:index>/render/",
        views_render.unit_render_now,
        name="unit-render",
    ),
    path(
        "<modelref:model>/<layername:layer>/render/",
        views_render.layer_render_now,
        name="layer-render",
    ),
    path("<modelref:model>/<layername:layer>/queue/", views_render.layer_queue, name="layer-queue"),
    path(
        "<modelref:model>/<layername:layer>/<int:index>/status.json",
        views_render.unit_render_status,
        name="unit-status",
    ),
]

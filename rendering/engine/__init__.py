"""Feature visualization engine: pure PyTorch, no Django.

Render many units of one layer in one optimization (`render_units`), a whole layer
(`render_layer`: DeepDream, caricature), and measure renders from any source the same way
(`unit_activation`). `layer_names` lists the layer names a model accepts.
"""

from rendering.engine.connections import Connections, expanded_weights, top_connections
from rendering.engine.render import (
    RenderResult,
    compile_cache,
    render_layer,
    render_units,
    unit_activation,
)
from rendering.engine.truncation import layer_names

__all__ = [
    "Connections",
    "expanded_weights",
    "top_connections",
    "RenderResult",
    "compile_cache",
    "layer_names",
    "render_layer",
    "render_units",
    "unit_activation",
]

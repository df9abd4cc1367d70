"""What docs/API.md's example walks, for the test-client run and the live run alike: mixed4c:447's
strongest input (mixed4b:9), that input's render and a public note about it."""

from typing import Any

import numpy as np


def docs_example_circuit(*, model: Any, unit: Any, author: Any) -> Any:
    """Store the rows the example reads; return the strongest input's unit (mixed4b:9)."""
    from annotations.notes import note_create
    from neurons.models import Technique
    from rendering.models import Connection, LayerConnection, Render

    mixed4b = model.layers.get(name="mixed4b")
    pair = LayerConnection.objects.create(
        source=mixed4b, target=unit.layer, method="expanded", kernel_size=1, matrix="w/m.npy"
    )
    Connection.objects.create(
        unit=unit,
        direction="in",
        pair=pair,
        other_indices=[9, 4],
        strengths=[0.7, -0.2],
        kernels=np.ones(2, dtype=np.float16).tobytes(),
    )
    source = mixed4b.units.get(index=9)
    Render.objects.create(
        unit=source,
        layer=mixed4b,
        technique=Technique.objects.get(slug="channel"),
        params={"steps": 512},
        params_hash="p" * 64,
        image="r/9.png",
        thumbnail="r/9-96.png",
        image_sha256="0" * 64,
        objective=1.0,
    )
    note_create(
        author=author,
        title="Dog heads",
        body="b",
        units="inceptionv1/mixed4b/9",
        visibility="public",
        publish=True,
    )
    return source

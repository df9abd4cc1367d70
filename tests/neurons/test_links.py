"""Layer and unit links are kept per process (`neurons.models.layer_path`): they must stay
what Django's `reverse` answers, under any script prefix."""

from typing import Any

import pytest
from django.urls import reverse, set_script_prefix

pytestmark = pytest.mark.django_db


def _reversed(unit: Any, model: str) -> tuple[str, str]:
    layer = reverse("neurons:layer", kwargs={"model": model, "layer": unit.layer.name})
    kwargs = {"model": model, "layer": unit.layer.name, "index": unit.index}
    return layer, reverse("neurons:unit", kwargs=kwargs)


def test_unit_and_layer_links_are_what_reverse_answers(inceptionv1: Any) -> None:
    for layer in inceptionv1.layers.all():
        for unit in (layer.units.get(index=0), layer.units.get(index=layer.num_units - 1)):
            versioned = f"{inceptionv1.slug}@{inceptionv1.version}"
            assert (layer.get_absolute_url(), unit.get_absolute_url()) == _reversed(
                unit, inceptionv1.slug
            )
            assert (layer.get_versioned_url(), unit.get_versioned_url()) == _reversed(
                unit, versioned
            )


def test_links_follow_the_script_prefix(unit: Any) -> None:
    assert unit.get_absolute_url() == "/models/inceptionv1/mixed4c/447/"
    try:
        set_script_prefix("/microscope/")
        assert unit.get_absolute_url() == "/microscope/models/inceptionv1/mixed4c/447/"
        assert unit.layer.get_absolute_url() == "/microscope/models/inceptionv1/mixed4c/"
        assert unit.get_absolute_url() == _reversed(unit, "inceptionv1")[1]
    finally:
        set_script_prefix("/")
    assert unit.get_absolute_url() == "/models/inceptionv1/mixed4c/447/"

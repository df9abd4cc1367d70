import pytest

from rendering.params import ParamsError, params_hash, render_params


def test_defaults_are_lucids() -> None:
    params = render_params("channel")
    assert params == {"size": 224, "steps": 512, "seed": 0, "lr": 0.05, "transforms": True}
    assert render_params("diversity")["diversity"] == 4


def test_the_hash_depends_on_values_not_on_key_order() -> None:
    a = render_params("channel", {"steps": 64, "seed": 1})
    b = render_params("channel", {"seed": 1, "steps": 64})
    assert params_hash(a) == params_hash(b)
    assert params_hash(a) != params_hash(render_params("channel", {"steps": 65, "seed": 1}))


@pytest.mark.parametrize(
    ("technique", "overrides", "message"),
    [
        ("channel", {"stepz": 3}, "takes no parameter 'stepz'"),
        ("channel", {"steps": 0}, "outside"),
        ("channel", {"steps": 2.5}, "is not a int"),
        ("channel", {"size": "big"}, "is not a int"),
        ("channel", {"transforms": "yes"}, "is not a bool"),
        ("diversity", {"diversity": 1}, "outside"),
        ("caricature", {}, "needs the sha256"),
        ("xray", {}, "unknown technique"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(technique, overrides, message) -> None:
    with pytest.raises(ParamsError, match=message):
        render_params(technique, overrides)

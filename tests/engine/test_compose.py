import pytest
import torch
import torch.nn.functional as F

from rendering.engine.compose import compose
from rendering.engine.conv_map import NotComposable
from rendering.engine.linearize import Linearized, Tape


def _taped(source: torch.Tensor, forward: object) -> tuple[Tape, torch.Tensor]:
    tape = Tape()
    mode = Linearized(tape)
    mode.between = True
    with mode:
        tape.start(source)
        out = forward(source)  # type: ignore[operator]
    return tape, out


def test_convolutions_around_a_max_pool_compose_to_one_strided_convolution() -> None:
    generator = torch.Generator().manual_seed(0)
    source = torch.randn(1, 2, 12, 12, generator=generator)
    first = torch.randn(3, 2, 3, 3, generator=generator)
    second = torch.randn(4, 3, 2, 2, generator=generator)

    def forward(a: torch.Tensor) -> torch.Tensor:  # bias given, as nn.Conv2d gives it
        return F.conv2d(F.max_pool2d(F.relu(F.conv2d(a, first, None)), 2), second, None)

    tape, out = _taped(source, forward)
    stack, stride, origin = compose(tape, out, 2).dense()
    kernel = stack.solid().permute(2, 3, 0, 1)  # (C_B, C_A, kh, kw)
    assert (stride, origin, tuple(kernel.shape)) == ((2, 2), (0, 0), (4, 2, 6, 6))
    torch.testing.assert_close(F.conv2d(source, kernel, stride=2), out, atol=1e-5, rtol=1e-5)


def test_what_compose_does_not_know_is_refused() -> None:
    source = torch.randn(1, 2, 6, 6, generator=torch.Generator().manual_seed(0))
    skip = torch.randn(1, 2, 6, 6)
    weight = torch.randn(2, 2, 1, 1)
    for forward in (
        lambda a: F.conv2d(torch.sigmoid(a), weight, None),
        lambda a: F.conv2d(a, weight, None) + skip,  # a skip connection from before the source
    ):
        tape, out = _taped(source, forward)
        with pytest.raises(NotComposable):
            compose(tape, out, 2)

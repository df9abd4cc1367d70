import torch
import torch.nn.functional as F

from rendering.engine.linearize import Linearized, Tape


def test_relus_are_the_identity_and_max_pools_average_only_inside_the_mode() -> None:
    x = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    assert (x < 0).any()
    with Linearized():
        relu, clamped, pooled = F.relu(x), x.clamp(min=0), F.max_pool2d(x, 2)
        padded = F.pad(x, (1, 1, 1, 1), value=-torch.inf)
    assert torch.equal(relu, x) and torch.equal(clamped, x)
    torch.testing.assert_close(pooled, F.avg_pool2d(x, 2))
    assert padded[0, 0, 0, 0] == 0  # -inf padding is zero padding
    assert not torch.equal(F.relu(x), x)


def test_the_tape_records_what_is_computed_from_the_source_and_the_convolutions_run() -> None:
    generator = torch.Generator().manual_seed(0)
    source, other = torch.randn(2, 1, 2, 5, 5, generator=generator)
    weight = torch.randn(3, 2, 3, 3, generator=generator)
    tape = Tape()
    mode = Linearized(tape)
    mode.between = True
    with mode:
        tape.start(source)
        doubled = source * 2
        unrelated = other + 1
        out = F.conv2d(doubled, weight)
    assert len(tape.steps) == 2 and tape.source is source
    assert (tape.node(doubled), tape.node(out), tape.node(unrelated)) == (1, 2, None)
    assert len(mode.conv_weights) == 1 and mode.conv_weights[0] is weight

import torch

from rendering.engine.conv_map import ConvMap, concatenated, summed

CPU = torch.device("cpu")


def test_a_grouped_convolution_is_its_block_diagonal_weight() -> None:
    weight = torch.randn(4, 2, 1, 1, generator=torch.Generator().manual_seed(0))
    identity = ConvMap(4, 4, torch.float32, CPU)
    stack, stride, origin = identity.conv(weight, (1, 1), (0, 0), (1, 1), 2).dense()
    expected = torch.zeros(4, 4)
    expected[:2, :2], expected[2:, 2:] = weight[:2, :, 0, 0], weight[2:, :, 0, 0]
    assert (stride, origin) == ((1, 1), (0, 0))
    torch.testing.assert_close(stack.solid()[0, 0], expected)


def test_a_concatenation_keeps_its_parts_and_a_sum_adds_them_in_a_common_box() -> None:
    generator = torch.Generator().manual_seed(0)
    small = torch.randn(1, 2, 1, 1, generator=generator)
    large = torch.randn(1, 2, 3, 3, generator=generator)
    identity = ConvMap(2, 2, torch.float32, CPU)
    narrow = identity.conv(small, (1, 1), (0, 0), (1, 1), 1)
    wide = identity.conv(large, (1, 1), (1, 1), (1, 1), 1)  # padding 1: origin -1
    stack, _, origin = concatenated([narrow, wide]).dense()
    assert stack.size == (3, 3) and origin == (-1, -1)
    assert [offset for _, offset in stack.parts] == [(1, 1), (0, 0)]
    solid = stack.solid()  # (3, 3, 2, 2): the 1x1 kernel in the centre of the box
    torch.testing.assert_close(solid[1, 1, 0], small[0, :, 0, 0])
    assert solid[0, 0, 0].abs().sum() == 0
    total, _, _ = summed([narrow, wide], [1.0, -1.0]).dense()
    difference = -large[0].permute(1, 2, 0).clone()
    difference[1, 1] += small[0, :, 0, 0]
    torch.testing.assert_close(total.solid()[:, :, 0], difference)

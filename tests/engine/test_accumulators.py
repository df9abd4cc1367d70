import math

import torch

from rendering.engine import accumulators


def test_a_merge_orders_signed_zeros_infinities_and_ties_exactly() -> None:
    empty = (torch.full((1, 4), -math.inf), torch.full((1, 4), 2**63 - 1), torch.zeros(1, 4))
    values = torch.tensor([[-0.0, 3.0, -math.inf, 0.0, -2.5, 3.0]])
    new = (values, torch.arange(10, 16).view(1, -1), torch.arange(6).view(1, -1))
    top, images, _ = accumulators._merge(empty, 0, new, descending=True)
    assert top.tolist() == [[3.0, 3.0, 0.0, 0.0]] and images.tolist() == [[11, 15, 10, 13]]
    kept = (top, images, torch.zeros(1, 4))
    later = (torch.tensor([[3.0, -math.inf]]), torch.tensor([[20, 21]]), torch.zeros(1, 2))
    top, images, _ = accumulators._merge(kept, 4, later, descending=True)
    assert images.tolist() == [[11, 15, 20, 10]]
    bottom, images, _ = accumulators._merge(
        (torch.full((1, 4), math.inf), empty[1], empty[2]), 0, new, descending=False
    )
    assert bottom.tolist() == [[-math.inf, -2.5, 0.0, 0.0]] and images.tolist() == [
        [12, 14, 10, 13]
    ]

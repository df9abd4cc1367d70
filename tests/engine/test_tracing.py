import pytest
import torch
from torch import Tensor, nn

from rendering.engine.tracing import OUTPUT, PRE_ACTIVATION, summary_plan


class ConvRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv(x))


class Untraceable(ConvRelu):
    def forward(self, x: Tensor) -> Tensor:
        if x.sum() > 1e9:  # data-dependent control flow: torch.fx cannot trace it
            return x
        return self.relu(self.conv(x))


@pytest.mark.parametrize(
    ("model", "method", "negatives"),
    [(ConvRelu, "traced", PRE_ACTIVATION), (Untraceable, "hook", OUTPUT)],
)
def test_a_layer_is_summarized_with_minima_below_its_relu_where_the_model_traces(
    model: type[ConvRelu], method: str, negatives: str
) -> None:
    torch.manual_seed(0)
    net = model().eval()
    images = torch.randn(2, 3, 8, 8)
    plan = summary_plan(net, ["relu"], images)
    assert plan.method == method and plan.negative_sources == {"relu": negatives}
    with torch.no_grad():
        summary = plan.forward(images)["relu"]
        pre = net.conv(images).flatten(2)
    out = pre.clamp(min=0)
    lowest = pre if negatives == PRE_ACTIVATION else out
    assert summary.map_size == (6, 6)
    assert (pre.min(dim=2).values < 0).any()  # so the two kinds of minima differ
    torch.testing.assert_close(summary.min_values, lowest.min(dim=2).values)
    torch.testing.assert_close(summary.max_values, out.max(dim=2).values)
    torch.testing.assert_close(summary.sums, out.sum(dim=2))
    assert summary_plan(net, ["relu"], images) is plan  # cached per model and layers
    assert all(not module._forward_hooks for module in net.modules())

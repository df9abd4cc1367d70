"""A registry entry small enough to import in milliseconds, for tests of the import machinery."""

from torch import nn

from rendering.engine.zoo import LayerSpec, ZooEntry


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.pool(self.relu1(self.conv1(x)))
        return self.head(self.relu2(self.conv2(x)))


TINYNET = ZooEntry(
    key="tinynet",
    display_name="TinyNet",
    family="test",
    description="two convolutions and a linear head",
    build=TinyNet,
    weights_url="https://example.invalid/tinynet.pth",
    layers=(
        LayerSpec("conv1", "relu1"),
        LayerSpec("conv2", "relu2"),
        LayerSpec("logits", "head.2", "linear"),
    ),
    input_size=32,
)

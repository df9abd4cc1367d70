"""The layers shown of each listed architecture, named as the literature names them.

Circuits names for InceptionV1, `conv<block>_<n>` for VGG, `layer<stage>.<block>` for ResNets,
TF-slim's names for InceptionV4; each `LayerSpec` says which module's output is the layer.
"""

from rendering.engine.zoo.spec import LayerSpec

INCEPTIONV1_LAYERS: tuple[str, ...] = (
    "conv2d0", "conv2d1", "conv2d2", "mixed3a", "mixed3b", "mixed4a",
    "mixed4b", "mixed4c", "mixed4d", "mixed4e", "mixed5a", "mixed5b",
)  # fmt: skip


# VGG19: each conv layer is shown after its ReLU, named as in the paper (conv<block>_<n>).
_VGG19_CONVS = [
    (block, n)
    for block, count in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
    for n in range(1, count + 1)
]


def vgg19_layers() -> tuple[LayerSpec, ...]:
    layers, index = [], 0
    for block, n in _VGG19_CONVS:
        if n == 1 and block > 1:
            index += 1  # the max-pool that closes the previous block
        layers.append(LayerSpec(f"conv{block}_{n}", f"features.{index + 1}"))
        index += 2
    layers += [
        LayerSpec("fc6", "classifier.1", "linear"),
        LayerSpec("fc7", "classifier.4", "linear"),
        LayerSpec("fc8", "classifier.6", "linear"),
    ]
    return tuple(layers)


def resnet50_layers() -> tuple[LayerSpec, ...]:
    layers = [LayerSpec("conv1", "relu")]
    for stage, blocks in ((1, 3), (2, 4), (3, 6), (4, 3)):
        layers += [
            LayerSpec(f"layer{stage}.{b}", f"layer{stage}.{b}", "block") for b in range(blocks)
        ]
    layers.append(LayerSpec("fc", "fc", "linear"))
    return tuple(layers)


INCEPTIONV3_MODULES = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
    "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
)  # fmt: skip

GOOGLENET_MODULES = (
    "conv1", "conv2", "conv3", "inception3a", "inception3b", "inception4a", "inception4b",
    "inception4c", "inception4d", "inception4e", "inception5a", "inception5b",
)  # fmt: skip

# InceptionV4 (timm's port of TF-slim's): `features.<i>` named as TF-slim and Lucid name them.
_INCEPTIONV4_NAMES = (
    "conv2d_1a_3x3", "conv2d_2a_3x3", "conv2d_2b_3x3", "mixed_3a", "mixed_4a", "mixed_5a",
    "mixed_5b", "mixed_5c", "mixed_5d", "mixed_5e", "mixed_6a", "mixed_6b", "mixed_6c",
    "mixed_6d", "mixed_6e", "mixed_6f", "mixed_6g", "mixed_6h", "mixed_7a", "mixed_7b",
    "mixed_7c", "mixed_7d",
)  # fmt: skip


def inceptionv4_layers() -> tuple[LayerSpec, ...]:
    return tuple(
        LayerSpec(name, f"features.{i}", "conv" if name.startswith("conv") else "block")
        for i, name in enumerate(_INCEPTIONV4_NAMES)
    ) + (LayerSpec("fc", "last_linear", "linear"),)


def resnetv2_50_layers() -> tuple[LayerSpec, ...]:
    """Pre-activation blocks (`stages.<s>.blocks.<b>`) named `layer<s+1>.<b>` like ResNet-50;
    `postnorm` is the final batch norm + ReLU that pre-activation networks end with."""
    layers = [LayerSpec("conv1", "stem.conv")]
    for stage, blocks in enumerate((3, 4, 6, 3)):
        layers += [
            LayerSpec(f"layer{stage + 1}.{b}", f"stages.{stage}.blocks.{b}", "block")
            for b in range(blocks)
        ]
    layers += [LayerSpec("postnorm", "norm", "block"), LayerSpec("fc", "head", "linear")]
    return tuple(layers)


def clip_rn50_layers() -> tuple[LayerSpec, ...]:
    """CLIP's modified ResNet-50: three stem convolutions (after their ReLUs), bottleneck
    blocks `layer<s>.<b>`, and the attention pool whose output is the image embedding."""
    layers = [LayerSpec(f"conv{i}", f"act{i}") for i in (1, 2, 3)]
    for stage, blocks in ((1, 3), (2, 4), (3, 6), (4, 3)):
        layers += [
            LayerSpec(f"layer{stage}.{b}", f"layer{stage}.{b}", "block") for b in range(blocks)
        ]
    layers.append(LayerSpec("attnpool", "attnpool", "attention"))
    return tuple(layers)


ALEXNET_LAYERS = (
    LayerSpec("conv1", "features.1"),
    LayerSpec("conv2", "features.4"),
    LayerSpec("conv3", "features.7"),
    LayerSpec("conv4", "features.9"),
    LayerSpec("conv5", "features.11"),
    LayerSpec("fc6", "classifier.2", "linear"),
    LayerSpec("fc7", "classifier.5", "linear"),
    LayerSpec("fc8", "classifier.6", "linear"),
)

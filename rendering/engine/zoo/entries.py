"""The model registry: what each studied network is, how to build it, which layers to show.

Adding a model is adding one `ZooEntry` to `ENTRIES`. Layer names follow the literature where a
convention exists (Circuits names for InceptionV1, `conv4_1` for VGG, `layer3.2` for ResNet).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """Maps an RGB image in [0, 1] to the model's input: (x * value_range - mean) / std."""

    value_range: float = 1.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    description: str = "ImageNet mean/std normalization of RGB in [0, 1]"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        return (images * self.value_range - mean) / std

    def as_dict(self) -> dict[str, object]:
        return {
            "value_range": self.value_range,
            "mean": list(self.mean),
            "std": list(self.std),
            "description": self.description,
        }


@dataclass(frozen=True)
class LayerSpec:
    name: str  # the literature's name, used in URLs
    module: str  # dotted path of the module whose output is the layer
    kind: str = "conv"  # conv | block | linear


@dataclass(frozen=True)
class ZooEntry:
    key: str
    display_name: str
    family: str
    description: str
    build: Callable[[], nn.Module]  # architecture with random-init weights
    weights_url: str
    layers: tuple[LayerSpec, ...]
    input_size: int = 224
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    training_dataset: str = "ImageNet (ILSVRC-2012)"
    licence: str = ""
    citation: str = ""
    # State-dict keys that published files carry but the built model does not (auxiliary heads).
    ignored_key_prefixes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.key


def _lucent_inceptionv1() -> nn.Module:
    from lucent.modelzoo import inceptionv1

    return inceptionv1(pretrained=False)


def _torchvision(name: str, **kwargs: object) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        model: nn.Module = getattr(torchvision.models, name)(weights=None, **kwargs)
        for aux in ("aux1", "aux2", "AuxLogits"):  # auxiliary training heads are not studied
            if getattr(model, aux, None) is not None:
                setattr(model, aux, None)
        if hasattr(model, "aux_logits"):
            model.aux_logits = False  # type: ignore[assignment]
        return model

    return build


_INCEPTIONV1_LAYERS: tuple[str, ...] = (
    "conv2d0", "conv2d1", "conv2d2", "mixed3a", "mixed3b", "mixed4a",
    "mixed4b", "mixed4c", "mixed4d", "mixed4e", "mixed5a", "mixed5b",
)  # fmt: skip

# VGG19: each conv layer is shown after its ReLU, named as in the paper (conv<block>_<n>).
_VGG19_CONVS = [
    (block, n)
    for block, count in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
    for n in range(1, count + 1)
]


def _vgg19_layers() -> tuple[LayerSpec, ...]:
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


def _resnet50_layers() -> tuple[LayerSpec, ...]:
    layers = [LayerSpec("conv1", "relu")]
    for stage, blocks in ((1, 3), (2, 4), (3, 6), (4, 3)):
        layers += [
            LayerSpec(f"layer{stage}.{b}", f"layer{stage}.{b}", "block") for b in range(blocks)
        ]
    layers.append(LayerSpec("fc", "fc", "linear"))
    return tuple(layers)


_INCEPTIONV3_MODULES = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
    "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
)  # fmt: skip

_GOOGLENET_MODULES = (
    "conv1", "conv2", "conv3", "inception3a", "inception3b", "inception4a", "inception4b",
    "inception4c", "inception4d", "inception4e", "inception5a", "inception5b",
)  # fmt: skip

_TORCHVISION_LICENCE = "BSD-3-Clause (torchvision); weights for research use (ImageNet terms)"

ENTRIES: dict[str, ZooEntry] = {
    entry.key: entry
    for entry in (
        ZooEntry(
            key="inceptionv1",
            display_name="InceptionV1",
            family="Inception",
            description=(
                "GoogLeNet as trained by the Lucid authors (TF 'inception5h'), the model the "
                "Circuits thread studies; layer names as in the Circuits thread."
            ),
            build=_lucent_inceptionv1,
            weights_url=(
                "https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/"
                "inception5h.pth"
            ),
            layers=tuple(
                LayerSpec(name, name, "conv" if name.startswith("conv") else "block")
                for name in _INCEPTIONV1_LAYERS
            ),
            preprocessing=Preprocessing(
                value_range=255.0,
                mean=(117.0, 117.0, 117.0),
                std=(1.0, 1.0, 1.0),
                description="RGB in [0, 255] minus 117 (Caffe/TF inception5h convention)",
            ),
            licence="Apache-2.0 (Lucid/Lucent; weights converted from TensorFlow's inception5h)",
            citation=(
                "@inproceedings{szegedy2015going,\n  title={Going deeper with convolutions},\n"
                "  author={Szegedy, Christian and Liu, Wei and Jia, Yangqing and others},\n"
                "  booktitle={CVPR},\n  year={2015}\n}"
            ),
        ),
        ZooEntry(
            key="alexnet",
            display_name="AlexNet",
            family="AlexNet",
            description="AlexNet (torchvision, one-GPU variant).",
            build=_torchvision("alexnet"),
            weights_url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            layers=(
                LayerSpec("conv1", "features.1"),
                LayerSpec("conv2", "features.4"),
                LayerSpec("conv3", "features.7"),
                LayerSpec("conv4", "features.9"),
                LayerSpec("conv5", "features.11"),
                LayerSpec("fc6", "classifier.2", "linear"),
                LayerSpec("fc7", "classifier.5", "linear"),
                LayerSpec("fc8", "classifier.6", "linear"),
            ),
            licence=_TORCHVISION_LICENCE,
            citation=(
                "@inproceedings{krizhevsky2012imagenet,\n  title={ImageNet Classification with "
                "Deep Convolutional Neural Networks},\n  author={Krizhevsky, Alex and Sutskever, "
                "Ilya and Hinton, Geoffrey E},\n  booktitle={NeurIPS},\n  year={2012}\n}"
            ),
        ),
        ZooEntry(
            key="vgg19",
            display_name="VGG19",
            family="VGG",
            description="VGG-19 without batch norm (torchvision).",
            build=_torchvision("vgg19"),
            weights_url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            layers=_vgg19_layers(),
            licence=_TORCHVISION_LICENCE,
            citation=(
                "@inproceedings{simonyan2015very,\n  title={Very Deep Convolutional Networks for "
                "Large-Scale Image Recognition},\n  author={Simonyan, Karen and Zisserman, "
                "Andrew},\n  booktitle={ICLR},\n  year={2015}\n}"
            ),
        ),
        ZooEntry(
            key="resnet50",
            display_name="ResNet-50",
            family="ResNet",
            description="ResNet-50 v1.5 (torchvision IMAGENET1K_V1 weights); blocks as layer<s>.<b>.",
            build=_torchvision("resnet50"),
            weights_url="https://download.pytorch.org/models/resnet50-0676ba61.pth",
            layers=_resnet50_layers(),
            licence=_TORCHVISION_LICENCE,
            citation=(
                "@inproceedings{he2016deep,\n  title={Deep Residual Learning for Image "
                "Recognition},\n  author={He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and "
                "Sun, Jian},\n  booktitle={CVPR},\n  year={2016}\n}"
            ),
        ),
        ZooEntry(
            key="inceptionv3",
            display_name="InceptionV3",
            family="Inception",
            description="Inception-v3 (torchvision, weights ported from TensorFlow).",
            build=_torchvision(
                "inception_v3", aux_logits=True, init_weights=True, transform_input=True
            ),
            weights_url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
            layers=tuple(
                LayerSpec(name.lower(), name, "conv" if name.startswith("Conv") else "block")
                for name in _INCEPTIONV3_MODULES
            )
            + (LayerSpec("fc", "fc", "linear"),),
            input_size=299,
            licence=_TORCHVISION_LICENCE,
            citation=(
                "@inproceedings{szegedy2016rethinking,\n  title={Rethinking the Inception "
                "Architecture for Computer Vision},\n  author={Szegedy, Christian and Vanhoucke, "
                "Vincent and Ioffe, Sergey and Shlens, Jon and Wojna, Zbigniew},\n  "
                "booktitle={CVPR},\n  year={2016}\n}"
            ),
            ignored_key_prefixes=("AuxLogits.",),
        ),
        ZooEntry(
            key="googlenet",
            display_name="GoogLeNet (torchvision)",
            family="Inception",
            description="GoogLeNet with batch norm as trained by torchvision (not Lucid's InceptionV1).",
            build=_torchvision(
                "googlenet", aux_logits=True, init_weights=True, transform_input=True
            ),
            weights_url="https://download.pytorch.org/models/googlenet-1378be20.pth",
            layers=tuple(
                LayerSpec(name, name, "conv" if name.startswith("conv") else "block")
                for name in _GOOGLENET_MODULES
            )
            + (LayerSpec("fc", "fc", "linear"),),
            licence=_TORCHVISION_LICENCE,
            citation=(
                "@inproceedings{szegedy2015going,\n  title={Going deeper with convolutions},\n"
                "  author={Szegedy, Christian and Liu, Wei and Jia, Yangqing and others},\n"
                "  booktitle={CVPR},\n  year={2015}\n}"
            ),
            ignored_key_prefixes=("aux1.", "aux2."),
        ),
    )
}
# Next: InceptionV4 and ResNetV2-50 (timm), CLIP RN50 (open_clip) are one ZooEntry each here,
# with a `build` that calls timm.create_model / open_clip.create_model and their weights URL.


def get_entry(key: str) -> ZooEntry:
    try:
        return ENTRIES[key]
    except KeyError:
        known = ", ".join(sorted(ENTRIES))
        raise UnknownModelError(f"Unknown model {key!r}; the registry has: {known}") from None


class UnknownModelError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])

"""Any torchvision classification model by name, with its layers found on the model itself.

`torchvision:<name>` (for example `torchvision:convnext_tiny`) becomes a `ZooEntry` whose
layers are discovered rather than listed by hand:

- a *block* is a module with parts of its own that is not a plain container (`Sequential`,
  `ModuleList`, `ModuleDict`): a ResNet bottleneck, a ConvNeXt block, an Inception module, a
  conv-norm-activation unit; its output is shown and nothing inside it;
- a convolution outside every block is shown too, after the activation that directly follows
  it in its container when there is one (VGG's and AlexNet's `features.<i>`);
- a fully connected layer outside every block is shown as a layer of neurons (the classifier).

Every layer is named by its module path. One probe forward at the model's input size keeps the
candidates whose output is a feature map (N, C, H, W) or a vector (N, C), in the order they run.
"""

import functools
import re
from collections.abc import Iterator

import torch
from torch import nn

from rendering.engine.zoo.classes import torchvision_class_names
from rendering.engine.zoo.libraries import torchvision_builder
from rendering.engine.zoo.spec import LayerSpec, Preprocessing, UnknownModelError, ZooEntry

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.LeakyReLU, nn.ELU)
_TORCHVISION_CITATION = (
    "@misc{torchvision2016,\n  title={TorchVision: PyTorch's Computer Vision library},\n"
    "  author={{TorchVision maintainers and contributors}},\n  year={2016},\n"
    "  howpublished={\\url{https://github.com/pytorch/vision}}\n}"
)


def _candidates(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(name, module path to capture, kind) for every block, lone conv and lone linear."""
    children = list(module.named_children())
    for position, (name, child) in enumerate(children):
        path = f"{prefix}{name}"
        if type(child) in _CONTAINERS:
            yield from _candidates(child, f"{path}.")
        elif any(True for _ in child.children()):
            yield path, path, "block"
        elif isinstance(child, nn.Conv2d):
            following = children[position + 1][1] if position + 1 < len(children) else None
            if isinstance(following, _ACTIVATIONS):
                yield path, f"{prefix}{children[position + 1][0]}", "conv"
            else:
                yield path, path, "conv"
        elif isinstance(child, nn.Linear):
            yield path, path, "linear"


def discover_layers(model: nn.Module, input_size: int) -> tuple[LayerSpec, ...]:
    """The layers worth visualizing in `model`, in the order its forward runs them."""
    found = list(_candidates(model))
    seen: dict[str, int] = {}
    shapes: dict[str, int] = {}
    handles = []
    for name, path, _kind in found:

        def record(_module: nn.Module, _inputs: object, output: object, name: str = name) -> None:
            seen.setdefault(name, len(seen))
            if isinstance(output, torch.Tensor):
                shapes[name] = output.dim()

        handles.append(model.get_submodule(path).register_forward_hook(record))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    layers = [
        LayerSpec(name, path, "linear" if shapes[name] == 2 else kind)
        for name, path, kind in found
        if name in seen and shapes.get(name) in (2, 4)
    ]
    layers.sort(key=lambda spec: seen[spec.name])
    if not any(spec.kind != "linear" for spec in layers):
        raise ValueError("found no convolutional layer or block whose output is a feature map")
    return tuple(layers)


def _family(name: str) -> str:
    match = re.match(r"[a-z]+", name)
    return match.group(0) if match else name


@functools.cache
def torchvision_entry(name: str) -> ZooEntry:
    """A registry entry for torchvision's classification model `name`."""
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        close = [k for k in known if k.startswith(name[:3])][:8] or known[:8]
        raise UnknownModelError(
            f"torchvision has no classification model {name!r}; for example: {', '.join(close)}"
        )
    weights = torchvision.models.get_model_weights(name).DEFAULT
    transforms = weights.transforms()
    input_size = int(transforms.crop_size[0])
    build = torchvision_builder(name)
    layers = discover_layers(build(), input_size)
    linear = [spec.name for spec in layers if spec.kind == "linear"]

    def download(progress: bool) -> dict[str, torch.Tensor]:
        return weights.get_state_dict(progress=progress, check_hash=True)

    return ZooEntry(
        key=f"torchvision:{name}",
        slug=name.replace("_", "-"),
        display_name=f"{name} (torchvision)",
        family=_family(name),
        description=(
            f"torchvision's {name} with its default weights ({weights}); layers discovered "
            "automatically and named by module path."
        ),
        build=build,
        weights_url=weights.url,
        layers=layers,
        input_size=input_size,
        preprocessing=Preprocessing(
            mean=tuple(transforms.mean),  # type: ignore[arg-type]
            std=tuple(transforms.std),  # type: ignore[arg-type]
        ),
        training_dataset=f"ImageNet-1k ({weights.name})",
        licence="BSD-3-Clause (torchvision); weights for research use (ImageNet terms)",
        citation=_TORCHVISION_CITATION,
        download=download,
        source="torchvision",
        # The last fully connected layer is the classifier (the import checks the count).
        class_names_layer=linear[-1] if linear else "",
        class_names=torchvision_class_names(name) if linear else None,
    )

"""The model registry: what each studied network is, how to build it, which layers to show.

Adding a model is adding one `ZooEntry` (`spec`) to `ENTRIES`. Layer names follow the literature
where a convention exists (Circuits names for InceptionV1, `conv4_1` for VGG, `layer3.2` for
ResNet); the longer lists are in `layer_lists`.
"""

from collections.abc import Callable
from typing import Any

from torch import nn

from rendering.engine.zoo.classes import (
    file_class_names,
    timm_class_names,
    torchvision_class_names,
)
from rendering.engine.zoo.discover import torchvision_entry
from rendering.engine.zoo.layer_lists import (
    ALEXNET_LAYERS,
    GOOGLENET_MODULES,
    INCEPTIONV1_LAYERS,
    INCEPTIONV3_MODULES,
    clip_rn50_layers,
    inceptionv4_layers,
    resnet50_layers,
    resnetv2_50_layers,
    vgg19_layers,
)
from rendering.engine.zoo.libraries import (
    clip_visual_builder,
    clip_visual_download,
    timm_builder,
    timm_download,
    torchvision_builder,
)
from rendering.engine.zoo.organism import COLOR_CORRELATION as _ORGANISM_COLOR_CORRELATION
from rendering.engine.zoo.spec import LayerSpec, Preprocessing, UnknownModelError, ZooEntry


def _lucent_inceptionv1() -> nn.Module:
    from lucent.modelzoo import inceptionv1

    return inceptionv1(pretrained=False)


# Which local response normalization InceptionV1 uses, written down because it is doubted.
_INCEPTIONV1_LRN = (
    "Local response normalization after conv2d0 and conv2d2 uses Lucent's constants: "
    "size=9, alpha=1e-4, beta=0.5, k=1 in PyTorch's convention, which divides alpha by the "
    "window size (y = x / (k + alpha/size * sum x^2)^beta). A public report on Lucent (pull "
    "request #51) reads depth_radius=5, bias=2.0, alpha=1e-4, beta=0.5 from a Lucid InceptionV1 "
    "graph, in TensorFlow's convention, which does not divide alpha; that graph may be the "
    "Caffe variant rather than inception5h. We keep Lucent's, the forward the converted "
    "weights were checked against; a change would be a new architecture revision."
)


def _stimuli_cnn() -> nn.Module:
    from rendering.engine.zoo.organism import StimuliCNN

    return StimuliCNN()


def _train_stimuli_cnn(seed: int, progress: Callable[[int, int, float], None] | None) -> Any:
    from rendering.engine.zoo.training import train

    return train(seed, progress=progress)


# timm's InceptionV4 and ResNetV2 weights (TF-slim's Inception convention).
_MINUS_ONE_TO_ONE = Preprocessing(
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    description="RGB in [0, 1] scaled to [-1, 1]",
)
_TIMM_LICENCE = "Apache-2.0 (timm code and these weights' model card)"
_PLACES365_URL = "http://places2.csail.mit.edu/models_places365/"
_PLACES365_CITATION = (
    "@article{zhou2017places,\n  title={Places: A 10 million Image Database for Scene "
    "Recognition},\n  author={Zhou, Bolei and Lapedriza, Agata and Khosla, Aditya and Oliva, "
    "Aude and Torralba, Antonio},\n  journal={IEEE Transactions on Pattern Analysis and Machine "
    "Intelligence},\n  year={2017}\n}"
)
_PLACES365_CLASSES = file_class_names(
    "categories_places365.txt", what="Places365's 365 categories", count=365
)
_PLACES365_LICENCE = (
    "Places365 CNNs (github.com/CSAILVision/places365, MIT licence); for non-commercial "
    "research, as the Places database's terms ask"
)

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
            source="lucent",
            weights_url=(
                "https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/"
                "inception5h.pth"
            ),
            layers=tuple(
                LayerSpec(name, name, "conv" if name.startswith("conv") else "block")
                for name in INCEPTIONV1_LAYERS
            )
            # The logits, named as Lucid and OpenAI Microscope name them.
            + (LayerSpec("softmax2_pre_activation", "softmax2_pre_activation_matmul", "linear"),),
            class_names_layer="softmax2_pre_activation",
            class_names=file_class_names(
                "inceptionv1-classes.txt", what="InceptionV1's 1,008 class names", count=1008
            ),
            preprocessing=Preprocessing(
                value_range=255.0,
                mean=(117.0, 117.0, 117.0),
                std=(1.0, 1.0, 1.0),
                description="RGB in [0, 255] minus 117 (Caffe/TF inception5h convention)",
            ),
            licence="Apache-2.0 (Lucid/Lucent; weights converted from TensorFlow's inception5h)",
            revision_note=_INCEPTIONV1_LRN,
            citation=(
                "@inproceedings{szegedy2015going,\n  title={Going deeper with convolutions},\n"
                "  author={Szegedy, Christian and Liu, Wei and Jia, Yangqing and others},\n"
                "  booktitle={CVPR},\n  year={2015}\n}"
            ),
        ),
        ZooEntry(
            key="alexnet",
            torchvision_name="alexnet",
            class_names_layer="fc8",
            class_names=torchvision_class_names("alexnet"),
            display_name="AlexNet",
            family="AlexNet",
            description="AlexNet (torchvision, one-GPU variant).",
            build=torchvision_builder("alexnet"),
            weights_url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            layers=ALEXNET_LAYERS,
            licence=_TORCHVISION_LICENCE,
            citation=(
                "@inproceedings{krizhevsky2012imagenet,\n  title={ImageNet Classification with "
                "Deep Convolutional Neural Networks},\n  author={Krizhevsky, Alex and Sutskever, "
                "Ilya and Hinton, Geoffrey E},\n  booktitle={NeurIPS},\n  year={2012}\n}"
            ),
        ),
        ZooEntry(
            key="vgg19",
            torchvision_name="vgg19",
            class_names_layer="fc8",
            class_names=torchvision_class_names("vgg19"),
            display_name="VGG19",
            family="VGG",
            description="VGG-19 without batch norm (torchvision).",
            build=torchvision_builder("vgg19"),
            weights_url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            layers=vgg19_layers(),
            licence=_TORCHVISION_LICENCE,
            citation=(
                "@inproceedings{simonyan2015very,\n  title={Very Deep Convolutional Networks for "
                "Large-Scale Image Recognition},\n  author={Simonyan, Karen and Zisserman, "
                "Andrew},\n  booktitle={ICLR},\n  year={2015}\n}"
            ),
        ),
        ZooEntry(
            key="resnet50",
            torchvision_name="resnet50",
            class_names_layer="fc",
            class_names=torchvision_class_names("resnet50"),
            display_name="ResNet-50",
            family="ResNet",
            description="ResNet-50 v1.5 (torchvision IMAGENET1K_V1 weights); blocks as layer<s>.<b>.",
            build=torchvision_builder("resnet50"),
            weights_url="https://download.pytorch.org/models/resnet50-0676ba61.pth",
            layers=resnet50_layers(),
            licence=_TORCHVISION_LICENCE,
            citation=(
                "@inproceedings{he2016deep,\n  title={Deep Residual Learning for Image "
                "Recognition},\n  author={He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and "
                "Sun, Jian},\n  booktitle={CVPR},\n  year={2016}\n}"
            ),
        ),
        ZooEntry(
            key="inceptionv3",
            torchvision_name="inception_v3",
            class_names_layer="fc",
            class_names=torchvision_class_names("inception_v3"),
            display_name="InceptionV3",
            family="Inception",
            description="Inception-v3 (torchvision, weights ported from TensorFlow).",
            build=torchvision_builder(
                "inception_v3", aux_logits=True, init_weights=True, transform_input=True
            ),
            weights_url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
            layers=tuple(
                LayerSpec(name.lower(), name, "conv" if name.startswith("Conv") else "block")
                for name in INCEPTIONV3_MODULES
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
            torchvision_name="googlenet",
            class_names_layer="fc",
            class_names=torchvision_class_names("googlenet"),
            display_name="GoogLeNet (torchvision)",
            family="Inception",
            description="GoogLeNet with batch norm as trained by torchvision (not Lucid's InceptionV1).",
            build=torchvision_builder(
                "googlenet", aux_logits=True, init_weights=True, transform_input=True
            ),
            weights_url="https://download.pytorch.org/models/googlenet-1378be20.pth",
            layers=tuple(
                LayerSpec(name, name, "conv" if name.startswith("conv") else "block")
                for name in GOOGLENET_MODULES
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
        ZooEntry(
            key="inceptionv4",
            display_name="InceptionV4",
            family="Inception",
            description="Inception-v4 (timm's port of the TF-slim weights); TF-slim layer names.",
            build=timm_builder("inception_v4"),
            class_names_layer="fc",
            class_names=timm_class_names(),
            weights_url="https://huggingface.co/timm/inception_v4.tf_in1k",
            download=timm_download("inception_v4.tf_in1k"),
            source="timm",
            layers=inceptionv4_layers(),
            input_size=299,
            preprocessing=_MINUS_ONE_TO_ONE,
            licence=_TIMM_LICENCE,
            citation=(
                "@inproceedings{szegedy2017inception,\n  title={Inception-v4, Inception-ResNet "
                "and the Impact of Residual Connections on Learning},\n  author={Szegedy, "
                "Christian and Ioffe, Sergey and Vanhoucke, Vincent and Alemi, Alexander A},\n"
                "  booktitle={AAAI},\n  year={2017}\n}"
            ),
        ),
        ZooEntry(
            key="resnetv2_50",
            slug="resnetv2-50",
            display_name="ResNetV2-50",
            family="ResNet",
            description=(
                "Pre-activation ResNet-50 (timm `resnetv2_50`, weights a1h_in1k trained by "
                "timm); blocks as layer<s>.<b>."
            ),
            build=timm_builder("resnetv2_50"),
            class_names_layer="fc",
            class_names=timm_class_names(),
            weights_url="https://huggingface.co/timm/resnetv2_50.a1h_in1k",
            download=timm_download("resnetv2_50.a1h_in1k"),
            source="timm",
            layers=resnetv2_50_layers(),
            preprocessing=_MINUS_ONE_TO_ONE,
            licence=_TIMM_LICENCE,
            citation=(
                "@inproceedings{he2016identity,\n  title={Identity Mappings in Deep Residual "
                "Networks},\n  author={He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and "
                "Sun, Jian},\n  booktitle={ECCV},\n  year={2016}\n}"
            ),
        ),
        ZooEntry(
            key="clip_rn50",
            slug="clip-rn50",
            display_name="CLIP ResNet-50 (image tower)",
            family="CLIP",
            description=(
                "The image encoder of OpenAI's CLIP RN50 (open_clip `RN50`, pretrained "
                "'openai'); the attention pool's 1,024 outputs are the image embedding."
            ),
            build=clip_visual_builder("RN50"),
            weights_url=(
                "https://openaipublic.azureedge.net/clip/models/afeb0e10f9e5a86da6080e35cf0912"
                "3aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt"
            ),
            download=clip_visual_download("RN50", "openai"),
            source="open_clip",
            layers=clip_rn50_layers(),
            preprocessing=Preprocessing(
                mean=(0.48145466, 0.4578275, 0.40821073),
                std=(0.26862954, 0.26130258, 0.27577711),
                description="CLIP's normalization of RGB in [0, 1]",
            ),
            training_dataset="WIT-400M (OpenAI's 400M image-text pairs; not public)",
            licence="MIT (OpenAI CLIP code and weights; open_clip MIT)",
            citation=(
                "@inproceedings{radford2021learning,\n  title={Learning Transferable Visual "
                "Models From Natural Language Supervision},\n  author={Radford, Alec and Kim, "
                "Jong Wook and Hallacy, Chris and others},\n  booktitle={ICML},\n  "
                "year={2021}\n}"
            ),
        ),
        ZooEntry(
            key="stimuli-cnn",
            display_name="Stimuli CNN (model organism)",
            family="Model organism",
            description=(
                "A small CNN trained on this machine to classify generated stimuli whose "
                "classes are known features: 8 orientations (gratings and lines), 4 curve "
                "directions, 6 hues and 2 textures, at random position, size, contrast and "
                "background. Its logits units have a right answer, so its renders, dataset "
                "examples and tuning curves can be checked."
            ),
            build=_stimuli_cnn,
            weights_url="",
            source="microscope",
            layers=(
                LayerSpec("conv1", "conv1"),
                LayerSpec("conv2", "conv2"),
                LayerSpec("conv3", "conv3"),
                LayerSpec("conv4", "conv4"),
                LayerSpec("logits", "logits", "linear"),
            ),
            input_size=64,
            preprocessing=Preprocessing(
                mean=(0.5, 0.5, 0.5),
                std=(0.25, 0.25, 0.25),
                description="RGB in [0, 1] minus 0.5, divided by 0.25",
            ),
            training_dataset="generated stimuli (rendering/engine/stimuli.py)",
            licence="the Microscope project's own weights, trained by `--weights train`",
            citation=(
                "@software{microscope_stimuli_cnn,\n  title={Microscope: stimuli-cnn, a model "
                "organism with known features},\n  author={{The Microscope authors}},\n  "
                "year={2026}\n}"
            ),
            train=_train_stimuli_cnn,
            color_correlation=_ORGANISM_COLOR_CORRELATION,
        ),
        ZooEntry(
            key="alexnet_places365",
            class_names_layer="fc8",
            class_names=_PLACES365_CLASSES,
            slug="alexnet-places365",
            display_name="AlexNet (Places365)",
            family="AlexNet",
            description=(
                "AlexNet trained on Places365-Standard by the Places authors; load the "
                f"published alexnet_places365.pth.tar from {_PLACES365_URL} with --weights <file>."
            ),
            build=torchvision_builder("alexnet", num_classes=365),
            weights_url=f"{_PLACES365_URL}alexnet_places365.pth.tar",
            layers=ALEXNET_LAYERS,
            training_dataset="Places365-Standard",
            licence=_PLACES365_LICENCE,
            citation=_PLACES365_CITATION,
        ),
        ZooEntry(
            key="resnet50_places365",
            class_names_layer="fc",
            class_names=_PLACES365_CLASSES,
            slug="resnet50-places365",
            display_name="ResNet-50 (Places365)",
            family="ResNet",
            description=(
                "ResNet-50 trained on Places365-Standard by the Places authors; load the "
                f"published resnet50_places365.pth.tar from {_PLACES365_URL} with --weights <file>."
            ),
            build=torchvision_builder("resnet50", num_classes=365),
            weights_url=f"{_PLACES365_URL}resnet50_places365.pth.tar",
            layers=resnet50_layers(),
            training_dataset="Places365-Standard",
            licence=_PLACES365_LICENCE,
            citation=_PLACES365_CITATION,
        ),
    )
}


def get_entry(key: str) -> ZooEntry:
    """A registry entry by key, or `torchvision:<name>` for any torchvision classifier."""
    if key in ENTRIES:
        return ENTRIES[key]
    if key.startswith("torchvision:"):
        name = key.removeprefix("torchvision:")
        for entry in ENTRIES.values():  # models the registry has under a literature name
            if entry.source == "torchvision" and entry.torchvision_name == name:
                return entry
        return torchvision_entry(name)
    known = ", ".join(sorted(ENTRIES))
    raise UnknownModelError(
        f"Unknown model {key!r}; the registry has: {known}; or name any torchvision "
        "classifier as torchvision:<name> (e.g. torchvision:convnext_tiny)"
    )

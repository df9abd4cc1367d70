"""Building a registry model with its weights, and the sha256 that identifies those weights."""

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rendering.engine.zoo.libraries import checkpoint_state_dict
from rendering.engine.zoo.spec import ZooEntry

PRETRAINED = "pretrained"
RANDOM = "random"
FILE = "file"
TRAIN = "train"  # trained here by the entry's own `train` (model organisms)


class WeightsError(Exception):
    """The requested weights cannot be loaded; the message says why and what to do instead."""


@dataclass(frozen=True)
class WeightsSpec:
    source: str  # pretrained | random | file
    seed: int = 0
    path: str = ""

    def __post_init__(self) -> None:
        if self.source not in (PRETRAINED, RANDOM, FILE, TRAIN):
            raise WeightsError(
                f"weights source must be pretrained, random, train or file, not {self.source!r}"
            )
        if self.source == FILE and not self.path:
            raise WeightsError("weights source 'file' needs the path of a state-dict file")

    @classmethod
    def parse(cls, text: str, *, seed: int = 0) -> "WeightsSpec":
        """`pretrained`, `random`, `train` or a path to a state-dict file (the CLI's --weights)."""
        if text in (PRETRAINED, RANDOM, TRAIN):
            return cls(source=text, seed=seed)
        return cls(source=FILE, path=text)

    def describe(self) -> str:
        if self.source == RANDOM:
            return f"random init (seed {self.seed})"
        if self.source == FILE:
            return f"state dict {self.path}"
        if self.source == TRAIN:
            return f"training here (seed {self.seed})"
        return "pretrained (published weights)"


@dataclass
class LoadedModel:
    entry: ZooEntry
    module: nn.Module
    weights: WeightsSpec
    sha256: str
    # For TRAIN: the training run (training.TrainedWeights: config, accuracy, times).
    training: Any = None


def state_dict_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """A hash of names, dtypes, shapes and values: equal weights give the same hash anywhere."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _build_seeded(entry: ZooEntry, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return entry.build()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist (give the path of a state dict)")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for unreadable files
        raise WeightsError(
            f"weights file {path} is not a readable PyTorch state dict: {error}"
        ) from None
    loaded = checkpoint_state_dict(loaded)
    if not isinstance(loaded, dict) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise WeightsError(f"weights file {path} does not hold a state dict of tensors")
    return loaded


def _apply_state_dict(
    entry: ZooEntry, module: nn.Module, state_dict: dict[str, torch.Tensor], origin: str
) -> None:
    kept = {
        k: v
        for k, v in state_dict.items()
        if not k.startswith(entry.ignored_key_prefixes or ("\0",))
    }
    try:
        result = module.load_state_dict(kept, strict=False)
    except RuntimeError as error:  # same names, other shapes (ImageNet's 1000 classes vs 365)
        mismatches = [line.strip() for line in str(error).splitlines() if "size mismatch" in line]
        raise WeightsError(
            f"{origin} does not match the {entry.display_name} architecture: {mismatches[:3]}"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(
            f"{origin} does not match the {entry.display_name} architecture: "
            f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
        )


def _download(entry: ZooEntry, progress: bool) -> dict[str, torch.Tensor]:
    try:
        if entry.download is not None:  # the library's own loader (timm, open_clip, …)
            return entry.download(progress)
        loaded = torch.hub.load_state_dict_from_url(
            entry.weights_url, map_location="cpu", progress=progress, weights_only=True
        )
        return checkpoint_state_dict(loaded)  # type: ignore[return-value]
    except Exception as error:  # urllib, OSError, Hugging Face hub and library errors alike
        raise WeightsError(
            f"Could not download pretrained weights for {entry.key} from {entry.weights_url} "
            f"({error}). Without internet, use --weights random (seeded; pages say 'untrained "
            f"weights') or --weights /path/to/state_dict.pt with a file copied from that URL."
        ) from None


def load_model(
    entry: ZooEntry,
    weights: WeightsSpec,
    *,
    progress: bool = False,
    download: Callable[[ZooEntry, bool], dict[str, torch.Tensor]] = _download,
    training_progress: Callable[[int, int, float], None] | None = None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
) -> LoadedModel:
    """Build `entry` with `weights`, in eval mode on the CPU, and hash the weights it ended with.

    TRAIN weights are trained now by `entry.train` (calling `training_progress(step, steps,
    accuracy)`), unless `state_dict` gives the weights a earlier training run stored.
    """
    if weights.source == TRAIN and entry.train is None:
        raise WeightsError(
            f"{entry.key} cannot be trained here; use --weights pretrained, random or a file"
        )
    module = _build_seeded(entry, weights.seed)
    training = None
    if weights.source == TRAIN:
        assert entry.train is not None
        if state_dict is None:
            training = entry.train(weights.seed, training_progress)
            state_dict = training.state_dict
        _apply_state_dict(entry, module, dict(state_dict), f"trained {entry.key} weights")
    elif weights.source == PRETRAINED:
        if entry.train is not None and not entry.weights_url:
            raise WeightsError(
                f"{entry.key} has no published weights: it is trained here, --weights train"
            )
        _apply_state_dict(entry, module, download(entry, progress), entry.weights_url)
    elif weights.source == FILE:
        path = Path(weights.path).expanduser()
        _apply_state_dict(entry, module, _read_state_dict(path), str(path))
    module.eval()
    sha = state_dict_sha256(module.state_dict())
    return LoadedModel(entry, module, weights, sha, training)

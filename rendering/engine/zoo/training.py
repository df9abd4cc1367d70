"""Training the model organism (`organism.StimuliCNN`) on the CPU, deterministically.

The same seed and `TrainingConfig` give the same weights, bit for bit, on the same torch build:
every random number comes from generators seeded here (numpy for the images, torch for the
initialization), torch runs with deterministic algorithms and a fixed thread count (a
different count can change the order of float sums inside a convolution), and the global
settings are put back afterwards.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rendering.engine.zoo.organism import CLASSES, INPUT_SIZE, StimuliCNN, draw_dataset

__all__ = ["TrainedWeights", "TrainingConfig", "evaluate", "held_out", "train"]

# Fixed, so that results do not depend on the machine's core count; one, because on this
# shared 2-core machine a second thread made each step slower (measured 0.65 s -> 2.1 s).
THREADS = 1
HELD_OUT_STREAM = 1  # the held-out images come from their own stream of the seed

# Called with (step, total steps, running training accuracy).
TrainingProgress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class TrainingConfig:
    """How the organism is trained. The defaults are the registry's; tests use tiny ones."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-3
    width: int = 16
    size: int = INPUT_SIZE
    held_out_per_class: int = 50
    classes: tuple[int, ...] | None = None  # indices into organism.CLASSES; None: all

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "width", "size", "held_out_per_class"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.classes is not None and (
            len(self.classes) < 2 or not all(0 <= c < len(CLASSES) for c in self.classes)
        ):
            raise ValueError(f"classes must name at least 2 of 0..{len(CLASSES) - 1}")

    @property
    def class_indices(self) -> tuple[int, ...]:
        return tuple(range(len(CLASSES))) if self.classes is None else self.classes


# The registry entry's training run (`import_model stimuli-cnn --weights train`).
DEFAULT_CONFIG = TrainingConfig()


@dataclass(frozen=True)
class TrainedWeights:
    state_dict: dict[str, torch.Tensor]
    seed: int
    config: TrainingConfig
    held_out_accuracy: float
    held_out_images: int
    cpu_seconds: float
    wall_seconds: float

    def describe(self) -> str:
        """One sentence for the provenance box."""
        c = self.config
        return (
            f"trained here on generated stimuli ({len(c.class_indices)} classes: orientation, "
            f"curve, colour, texture), seed {self.seed}, {c.steps} Adam steps of "
            f"{c.batch_size} images at {c.size} px ({c.steps * c.batch_size:,} images), "
            f"{self.wall_seconds:.0f} s on {THREADS} CPU threads; held-out accuracy "
            f"{self.held_out_accuracy:.1%} on {self.held_out_images} images never trained on"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "config": asdict(self.config),
            "held_out_accuracy": self.held_out_accuracy,
            "held_out_images": self.held_out_images,
            "cpu_seconds": round(self.cpu_seconds, 1),
            "wall_seconds": round(self.wall_seconds, 1),
            "threads": THREADS,
            "torch": torch.__version__,
        }


@contextmanager
def _deterministic() -> Iterator[None]:
    threads = torch.get_num_threads()
    algorithms = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.use_deterministic_algorithms(algorithms)
        torch.set_num_threads(threads)


def held_out(
    seed: int, config: TrainingConfig, per_class: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The held-out images of a training run (never trained on) and their labels."""
    rng = np.random.default_rng([seed, HELD_OUT_STREAM])
    count = per_class or config.held_out_per_class
    return draw_dataset(count, rng, classes=config.class_indices, size=config.size)


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of `model` (left in eval mode) on images in [0, 1]."""
    model.eval()
    with torch.no_grad():
        logits = torch.cat(
            [
                model(normalize(torch.from_numpy(images[i : i + 256])))
                for i in range(0, len(images), 256)
            ]
        )
    return float((logits.argmax(1).numpy() == labels).mean())


# The registry entry's preprocessing: RGB in [0, 1] to roughly zero mean, unit spread.
MEAN, STD = 0.5, 0.25


def normalize(images: torch.Tensor) -> torch.Tensor:
    return (images - MEAN) / STD


def train(
    seed: int = 0,
    config: TrainingConfig | None = None,
    *,
    progress: TrainingProgress | None = None,
) -> TrainedWeights:
    """Train a StimuliCNN from scratch: Adam, cosine learning rate, fresh images every step,
    one-vs-rest logistic loss on the class logits."""
    config = config or DEFAULT_CONFIG
    started, cpu_started = time.perf_counter(), time.process_time()
    with _deterministic():
        torch.manual_seed(seed)
        model = StimuliCNN(classes=len(config.class_indices), width=config.width)
        rng = np.random.default_rng([seed, 0])
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / config.steps))
        )
        per_class = math.ceil(config.batch_size / len(config.class_indices))
        correct = seen = 0
        model.train()
        for step in range(config.steps):
            images, labels = draw_dataset(
                per_class, rng, classes=config.class_indices, size=config.size
            )
            images, labels = images[: config.batch_size], labels[: config.batch_size]
            target = torch.from_numpy(labels)
            logits = model(normalize(torch.from_numpy(images)))
            # One-vs-rest: every logit learns to detect its own class against all others (not
            # merely to beat them, as with softmax), so a class unit's top images are its class.
            loss = F.binary_cross_entropy_with_logits(
                logits, F.one_hot(target, logits.shape[1]).float()
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            correct += int((logits.argmax(1) == target).sum())
            seen += len(labels)
            if progress is not None and ((step + 1) % 10 == 0 or step + 1 == config.steps):
                progress(step + 1, config.steps, correct / seen)
                correct = seen = 0
        images, labels = held_out(seed, config)
        accuracy = evaluate(model, images, labels)
    state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    return TrainedWeights(
        state_dict=state,
        seed=seed,
        config=config,
        held_out_accuracy=accuracy,
        held_out_images=len(labels),
        cpu_seconds=time.process_time() - cpu_started,
        wall_seconds=time.perf_counter() - started,
    )

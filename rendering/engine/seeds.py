"""Seeding: every image draws its randomness from its own CPU generator.

A generator per image, keyed by (seed, unit, replica), makes a unit's image independent of
which other units share its batch and of the device: numbers are drawn on the CPU and only
then moved, so CUDA and CPU renders start from the same spectrum and see the same transforms.
"""

from __future__ import annotations

import numpy as np
import torch

# Keys that are not unit indices, so they can never collide with a real (unit, replica).
LAYER_KEY = -1
SHARED_KEY = -2


def image_generator(seed: int, unit: int, replica: int = 0) -> torch.Generator:
    """A CPU generator for one image; SeedSequence mixes the keys so nearby seeds decorrelate."""
    # SeedSequence wants non-negative entropy: wrap the seed, shift the negative sentinel keys.
    entropy = [int(seed) % (1 << 64), int(unit) + 2, int(replica)]
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device="cpu").manual_seed(int(state) & ((1 << 63) - 1))

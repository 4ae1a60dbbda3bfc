"""Where a campaign's backbones come from, one design index at a time (never a list of all of them).

Each design is a pure function of its index and the campaign's settings: a generated bundle draws its
parameters from a random generator seeded by (campaign seed, index), a file source reads the index-th file.
A streaming pipeline asks for the designs of the indices it is working on, so memory never holds more than
those, and a resumed campaign regenerates exactly the designs it has not finished.
"""

from __future__ import annotations

import numpy as np

from foldflow.config import DesignConfig
from foldflow.design.backbones import Backbone, BundleParameters, helical_bundle, read_backbone


def bundle_parameters(index: int, config: DesignConfig) -> BundleParameters:
    """The index-th design's bundle, drawn from ``config.bundle``'s ranges."""
    space = config.bundle
    rng = np.random.default_rng([config.seed, index])
    helices = int(rng.choice(space.helices))
    radius = space.supercoil_radius[helices]
    return BundleParameters(
        helices=helices, helix_length=int(rng.integers(space.helix_length[0], space.helix_length[1] + 1)),
        supercoil_radius=float(rng.uniform(*radius)), supercoil_pitch=float(rng.uniform(*space.supercoil_pitch)),
        supercoil_phase=float(rng.uniform(0, 2 * np.pi)), helix_phase=float(rng.uniform(0, 2 * np.pi)))


def design_count(config: DesignConfig) -> int:
    return len(config.backbone_files) if config.backbone_files else config.designs


def backbone(index: int, config: DesignConfig) -> Backbone:
    """The index-th design's backbone: the index-th file, or a generated helical bundle."""
    if config.backbone_files:
        return read_backbone(config.backbone_files[index])
    return helical_bundle(bundle_parameters(index, config), name=f"bundle_{index:06d}")

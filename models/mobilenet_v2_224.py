"""Phone tier: MobileNetV2 at the paper's size (width 1.0, 3x224x224), calibrated weights, 10 classes.

The architecture and parity notes are `models/mobilenet_v2_arch.py`, with the paper's block table
(17 inverted residual blocks, stem 32, head 1280). With a 1000-class head it has the published
3.50M parameters (3.47M without the BN scales/shifts) and ~300M MACs at 224x224
(`build_torch(num_classes=1000)`, tests/models/test_phone_tier.py); the 10-class head used here
has 2.24M. Weights: seeded, BN statistics re-estimated on the generated shapes/textures of
`models/data_images.py` at 224x224 (`models/calibrate.py`): latency, size and parity only.
"""
from __future__ import annotations

from dataclasses import replace

from models import mobilenet_v2_arch as arch
from models.data_images import make_dataset
from models.spec import Dataset, ModelSpec, TrainConfig

INPUT = (3, 224, 224)
NUM_CLASSES = 10
ARCH = arch.Arch(input=INPUT, num_classes=NUM_CLASSES, stem=32, blocks=arch.standard_blocks(1.0), head=1280,
                 name="mobilenet_v2_224")


def load_data(seed: int) -> Dataset:
    # 256 images re-estimate the BN statistics and calibrate int8; 64 held out keep the bench's
    # accuracy/agreement pass short at ~300M MACs per image
    return Dataset(*make_dataset(seed, n_train=256, n_test=64, size=INPUT[1]))


def build_torch(num_classes: int = NUM_CLASSES):
    return arch.build_torch(replace(ARCH, num_classes=num_classes))


def build_keras(num_classes: int = NUM_CLASSES):
    return arch.build_keras(replace(ARCH, num_classes=num_classes))


# calibrated: one pass of BN re-estimation
SPEC = ModelSpec.of(__name__, "MobileNetV2 1.0 at 224x224 (paper table, 17 blocks), calibrated weights, 10 classes",
                    keras_layout="nhwc", train=TrainConfig(epochs=1, batch_size=32), calibration_samples=128,
                    tier="phone", weights="calibrated", build_cost_s=375)

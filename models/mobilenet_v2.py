"""MobileNetV2-style classifier (width ~0.35, shortened) on procedural shapes/textures (3x96x96, 10 classes).

The architecture (both twins, parity notes) is `models/mobilenet_v2_arch.py`; this file is the toy
zoo's block table. 7 inverted residual blocks; spatial size 96 -> 48 (stem) -> 24 (block 0, stride 2
unlike the real network's first block: full-resolution 48x48 blocks made training several times
slower on 2 cores) -> 12 -> 6 -> 3. Data: `models/data_images.py` (3000 train / 500 test).
The paper-size network is the phone tier's `mobilenet_v2_224`.
"""
from __future__ import annotations

from models import mobilenet_v2_arch as arch
from models.data_images import make_dataset
from models.spec import Dataset, ModelSpec, TrainConfig

INPUT = (3, 96, 96)
NUM_CLASSES = 10
# (expansion t, output channels c, stride s) per block: width-0.35 channel counts, fewer blocks
ARCH = arch.Arch(input=INPUT, num_classes=NUM_CLASSES, stem=16,
                 blocks=((1, 8, 2), (6, 16, 2), (6, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1)),
                 head=128, name="mobilenet_v2")


def load_data(seed: int) -> Dataset:
    return Dataset(*make_dataset(seed, n_train=3000, n_test=500, size=INPUT[1]))


def build_torch():
    return arch.build_torch(ARCH)


def build_keras():
    return arch.build_keras(ARCH)


SPEC = ModelSpec.of(__name__, "MobileNetV2-style (width 0.35, 7 inverted residual blocks) on procedural shapes "
                    "(3x96x96, 10 classes)",
                    keras_layout="nhwc", train=TrainConfig(epochs=6, batch_size=32, lr=3e-3), build_cost_s=360)

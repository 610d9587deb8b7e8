"""DS-CNN keyword spotting (MLPerf Tiny style) on generated 1 s "keywords": MFCC 49x10, 10 classes.

conv 10x4/2 (64) + BN + ReLU -> 4 x [depthwise 3x3 + BN + ReLU, pointwise 1x1 (64) + BN + ReLU] ->
global average pool (MLPerf: AvgPool over the whole 25x5 map, the same thing) -> dense logits.
Data: `models/data_audio.py` (3000 train / 600 test). Input torch (1, 49, 10), Keras (49, 10, 1).
The builders take an `Arch`: the phone tier's `ds_cnn_l` is the same network at another size.

Twin parity notes:
- the first conv is stride 2 with a 10x4 kernel on 49x10: Keras 'same' pads (top 4, bottom 5,
  left 1, right 1); torch pads that explicitly with F.pad(x, (1, 1, 4, 5)) and padding=0 (likewise a
  stride-2 depthwise block: `Arch.stride2_pad`).
- MLPerf's dropout layers are left out (they are identities at inference and only cost training time).
- BN eps 1e-3 in both; Keras BN momentum 0.9 (= torch momentum 0.1).
"""
from __future__ import annotations

from dataclasses import dataclass

from models.data_audio import KWS_CLASSES, make_kws_dataset
from models.spec import Dataset, ModelSpec, TrainConfig

INPUT = (1, 49, 10)
NUM_CLASSES = len(KWS_CLASSES)
BN_EPS = 1e-3
BN_MOMENTUM_KERAS = 0.9


@dataclass(frozen=True)
class Arch:
    """One DS-CNN: stem conv + BN + ReLU, depthwise-separable blocks, global average pool, dense logits."""
    name: str
    filters: int
    stem_kernel: tuple[int, int]
    stem_stride: int | tuple[int, int]
    stem_pad: tuple[int, int, int, int]     # torch F.pad order (left, right, top, bottom) == Keras 'same'
    strides: tuple[int, ...]                # one per DS block
    stride2_pad: tuple[int, int, int, int] | None = None    # F.pad of a stride-2 block (Keras 'same')


ARCH = Arch("ds_cnn_kws", filters=64, stem_kernel=(10, 4), stem_stride=2, stem_pad=(1, 1, 4, 5), strides=(1,) * 4)


def load_data(seed: int) -> Dataset:
    x_tr, y_tr, x_te, y_te = make_kws_dataset(seed, n_train=3000, n_test=600)
    return Dataset(x_tr[:, None], y_tr, x_te[:, None], y_te)  # (N, 49, 10) -> NCHW (N, 1, 49, 10)


def build_torch(arch: Arch = ARCH):
    import torch.nn as nn
    import torch.nn.functional as F

    class DSBlock(nn.Module):
        def __init__(self, c, stride):
            super().__init__()
            self.pad = arch.stride2_pad if stride == 2 else None
            self.dw = nn.Conv2d(c, c, 3, stride, padding=0 if self.pad else 1, groups=c, bias=False)
            self.dw_bn = nn.BatchNorm2d(c, eps=BN_EPS)
            self.pw = nn.Conv2d(c, c, 1, bias=False)
            self.pw_bn = nn.BatchNorm2d(c, eps=BN_EPS)
            self.relu = nn.ReLU()

        def forward(self, x):
            x = self.relu(self.dw_bn(self.dw(F.pad(x, self.pad) if self.pad else x)))
            return self.relu(self.pw_bn(self.pw(x)))

    class DSCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, arch.filters, arch.stem_kernel, arch.stem_stride, bias=False)
            self.stem_bn = nn.BatchNorm2d(arch.filters, eps=BN_EPS)
            self.relu = nn.ReLU()
            self.blocks = nn.ModuleList(DSBlock(arch.filters, s) for s in arch.strides)
            # adaptive pooling to 1, not mean(dim): XNNPACK delegates the former, not the latter
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(arch.filters, NUM_CLASSES)

        def forward(self, x):
            x = self.relu(self.stem_bn(self.stem(F.pad(x, arch.stem_pad))))
            for block in self.blocks:
                x = block(x)
            return self.fc(self.gap(x).flatten(1))

    return DSCNN()


def build_keras(arch: Arch = ARCH):
    import keras
    from keras import layers

    def bn_relu(x, name):
        x = layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM_KERAS, name=name)(x)
        return layers.ReLU()(x)

    inp = keras.Input((INPUT[1], INPUT[2], INPUT[0]), batch_size=1, name="input")
    x = layers.Conv2D(arch.filters, arch.stem_kernel, arch.stem_stride, padding="same", use_bias=False,
                      name="stem")(inp)
    x = bn_relu(x, "stem_bn")
    for i, s in enumerate(arch.strides):
        p = f"blocks_{i}_"
        x = bn_relu(layers.DepthwiseConv2D(3, s, padding="same", use_bias=False, name=p + "dw")(x), p + "dw_bn")
        x = bn_relu(layers.Conv2D(arch.filters, 1, use_bias=False, name=p + "pw")(x), p + "pw_bn")
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(NUM_CLASSES, name="fc")(x)
    return keras.Model(inp, out, name=arch.name)


SPEC = ModelSpec.of(__name__, "DS-CNN keyword spotting (MLPerf Tiny style, 64 filters) on generated audio MFCC "
                              "(49x10, 10 classes)",
                    keras_layout="nhwc", train=TrainConfig(epochs=5, batch_size=64, lr=3e-3), build_cost_s=125)

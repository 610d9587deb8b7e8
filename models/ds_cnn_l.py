"""Phone tier: DS-CNN-L keyword spotter ("Hello Edge", Zhang et al. 2017, the large DS-CNN), trained.

conv 10x4 stride (2, 1) (276) + BN + ReLU -> 5 x [depthwise 3x3 + BN + ReLU, pointwise 1x1 (276) +
BN + ReLU], the first with stride 2 -> global average pool -> dense logits. On MFCC 49x10: 25x10
after the stem, 13x5 after the first DS block; 0.41M parameters (10 classes; BN and bias-free convs)
and 28.3M MACs = 56.6M ops, the paper's 56.9 MOps. The paper's often-quoted ~0.5M is its 497.6 KB
memory column, not a parameter count. Same data as the toy `ds_cnn_kws` (`models/data_audio.py`, 10
generated keywords, 3000 train / 600 test), trained 3 epochs: 28M MACs per sample train in ~2.5 min
on one core (99.7 % held out), unlike the other phone-tier models.

Twin parity notes:
- Keras 'same' padding is asymmetric where the sizes are odd; torch pads explicitly the same way
  (F.pad) and convolves with padding 0: stem (top 4, bottom 5, left 1, right 2) for 10x4 stride (2, 1)
  on 49x10; first DS block (top 1, bottom 1, left 0, right 1) for 3x3 stride 2 on 25x10.
- the paper's dropout is left out (identity at inference); BN eps 1e-3, Keras momentum 0.9.
"""
from __future__ import annotations

from models.data_audio import KWS_CLASSES, make_kws_dataset
from models.spec import Dataset, ModelSpec, TrainConfig
from models.transfer import transfer_by_name

INPUT = (1, 49, 10)
NUM_CLASSES = len(KWS_CLASSES)
FILTERS = 276
N_DS_BLOCKS = 5
BN_EPS = 1e-3
BN_MOMENTUM_KERAS = 0.9
STEM_KERNEL, STEM_STRIDE = (10, 4), (2, 1)
# torch F.pad order (left, right, top, bottom) == Keras 'same' for these sizes and strides
STEM_PAD = (1, 2, 4, 5)
DS_STRIDES = (2, 1, 1, 1, 1)
DS0_PAD = (0, 1, 1, 1)


def load_data(seed: int) -> Dataset:
    x_tr, y_tr, x_te, y_te = make_kws_dataset(seed, n_train=3000, n_test=600)
    return Dataset(x_tr[:, None], y_tr, x_te[:, None], y_te)  # (N, 49, 10) -> NCHW (N, 1, 49, 10)


def build_torch():
    import torch.nn as nn
    import torch.nn.functional as F

    class DSBlock(nn.Module):
        def __init__(self, c, stride):
            super().__init__()
            self.pad = DS0_PAD if stride == 2 else None
            self.dw = nn.Conv2d(c, c, 3, stride, padding=0 if self.pad else 1, groups=c, bias=False)
            self.dw_bn = nn.BatchNorm2d(c, eps=BN_EPS)
            self.pw = nn.Conv2d(c, c, 1, bias=False)
            self.pw_bn = nn.BatchNorm2d(c, eps=BN_EPS)
            self.relu = nn.ReLU()

        def forward(self, x):
            x = self.relu(self.dw_bn(self.dw(F.pad(x, self.pad) if self.pad else x)))
            return self.relu(self.pw_bn(self.pw(x)))

    class DSCNNL(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, FILTERS, STEM_KERNEL, STEM_STRIDE, bias=False)
            self.stem_bn = nn.BatchNorm2d(FILTERS, eps=BN_EPS)
            self.relu = nn.ReLU()
            self.blocks = nn.ModuleList(DSBlock(FILTERS, s) for s in DS_STRIDES)
            # adaptive pooling to 1, not mean(dim): XNNPACK delegates the former, not the latter
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(FILTERS, NUM_CLASSES)

        def forward(self, x):
            x = self.relu(self.stem_bn(self.stem(F.pad(x, STEM_PAD))))
            for block in self.blocks:
                x = block(x)
            return self.fc(self.gap(x).flatten(1))

    return DSCNNL()


def build_keras():
    import keras
    from keras import layers

    def bn_relu(x, name):
        x = layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM_KERAS, name=name)(x)
        return layers.ReLU()(x)

    inp = keras.Input((INPUT[1], INPUT[2], INPUT[0]), batch_size=1, name="input")
    x = layers.Conv2D(FILTERS, STEM_KERNEL, STEM_STRIDE, padding="same", use_bias=False, name="stem")(inp)
    x = bn_relu(x, "stem_bn")
    for i, s in enumerate(DS_STRIDES):
        p = f"blocks_{i}_"
        x = bn_relu(layers.DepthwiseConv2D(3, s, padding="same", use_bias=False, name=p + "dw")(x), p + "dw_bn")
        x = bn_relu(layers.Conv2D(FILTERS, 1, use_bias=False, name=p + "pw")(x), p + "pw_bn")
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(NUM_CLASSES, name="fc")(x)
    return keras.Model(inp, out, name="ds_cnn_l")


SPEC = ModelSpec(
    name="ds_cnn_l",
    description="DS-CNN-L keyword spotting (Hello Edge large: 276 filters, 5 DS blocks) on generated "
                "audio MFCC (49x10, 10 classes)",
    task="classification",
    input_shape=INPUT,
    num_outputs=NUM_CLASSES,
    load_data=load_data,
    build_torch=build_torch,
    build_keras=build_keras,
    transfer=transfer_by_name,
    keras_layout="nhwc",
    train=TrainConfig(epochs=3, batch_size=64, lr=3e-3),
    tier="phone",
    weights="trained",
    build_cost_s=180,
)

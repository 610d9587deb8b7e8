"""Phone tier: DS-CNN-L keyword spotter ("Hello Edge", Zhang et al. 2017, the large DS-CNN), trained.

conv 10x4 stride (2, 1) (276) + BN + ReLU -> 5 x [depthwise 3x3 + BN + ReLU, pointwise 1x1 (276) +
BN + ReLU], the first with stride 2 -> global average pool -> dense logits. On MFCC 49x10: 25x10
after the stem, 13x5 after the first DS block; 0.41M parameters (10 classes; BN and bias-free convs)
and 28.3M MACs = 56.6M ops, the paper's 56.9 MOps. The paper's often-quoted ~0.5M is its 497.6 KB
memory column, not a parameter count. Same data and builders as the toy `ds_cnn_kws`
(`models/data_audio.py`, 10 generated keywords, 3000 train / 600 test), trained 3 epochs: 28M MACs
per sample train in ~2.5 min on one core (99.7 % held out), unlike the other phone-tier models.

Twin parity notes:
- Keras 'same' padding is asymmetric where the sizes are odd; torch pads explicitly the same way
  (F.pad) and convolves with padding 0: stem (top 4, bottom 5, left 1, right 2) for 10x4 stride (2, 1)
  on 49x10; first DS block (top 1, bottom 1, left 0, right 1) for 3x3 stride 2 on 25x10.
- the paper's dropout is left out (identity at inference); BN eps 1e-3, Keras momentum 0.9.
"""
from __future__ import annotations

from models import ds_cnn_kws as ds_cnn
from models.spec import ModelSpec, TrainConfig

INPUT, NUM_CLASSES, load_data = ds_cnn.INPUT, ds_cnn.NUM_CLASSES, ds_cnn.load_data
ARCH = ds_cnn.Arch("ds_cnn_l", filters=276, stem_kernel=(10, 4), stem_stride=(2, 1), stem_pad=(1, 2, 4, 5),
                   strides=(2, 1, 1, 1, 1), stride2_pad=(0, 1, 1, 1))


# plain functions, not partials: a function's __module__ names this file (cache keys follow it)
def build_torch():
    return ds_cnn.build_torch(ARCH)


def build_keras():
    return ds_cnn.build_keras(ARCH)


SPEC = ModelSpec.of(__name__, "DS-CNN-L keyword spotting (Hello Edge large: 276 filters, 5 DS blocks) on "
                              "generated audio MFCC (49x10, 10 classes)",
                    keras_layout="nhwc", train=TrainConfig(epochs=3, batch_size=64, lr=3e-3), tier="phone",
                    weights="trained", build_cost_s=180)

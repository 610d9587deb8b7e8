"""MobileNetV2-style classifier (width ~0.35, shortened) on procedural shapes/textures (3x96x96, 10 classes).

stem conv3x3/2 -> 7 inverted residual blocks (expand 1x1 + BN + ReLU6, depthwise 3x3 + BN + ReLU6,
project 1x1 + BN, linear; residual when stride 1 and channels equal) -> conv1x1 + BN + ReLU6 ->
global average pool -> dense logits. Spatial size 96 -> 48 (stem) -> 24 (block 0, stride 2 unlike
the real network's first block: full-resolution 48x48 blocks made training several times slower on
2 cores) -> 12 -> 6 -> 3. Data: `models/data_images.py` (3000 train / 500 test).

Twin parity notes:
- stride-2 convs: Keras 'same' pads bottom/right only for even inputs, torch pads symmetrically. Both
  twins pad explicitly and symmetrically instead: Keras `ZeroPadding2D(1)` + 'valid', torch padding=1.
  Stride-1 3x3 convs use 'same' / padding=1 (symmetric in both).
- BN eps 1e-3 in both; Keras BN momentum 0.9 (= torch momentum 0.1) so running stats follow alike.
- global average pooling (AdaptiveAvgPool2d(1) / GlobalAveragePooling2D), no flatten: layout-independent.
"""
from __future__ import annotations

from models.data_images import make_dataset
from models.spec import Dataset, ModelSpec, TrainConfig
from models.transfer import transfer_by_name

INPUT = (3, 96, 96)
NUM_CLASSES = 10
BN_EPS = 1e-3
BN_MOMENTUM_KERAS = 0.9
STEM = 16
# (expansion t, output channels c, stride s) per block: width-0.35 channel counts, fewer blocks
BLOCKS = ((1, 8, 2), (6, 16, 2), (6, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1))
HEAD = 128


def load_data(seed: int) -> Dataset:
    return Dataset(*make_dataset(seed, n_train=3000, n_test=500, size=INPUT[1]))


def _plan():
    """-> [(in_ch, hidden_ch, out_ch, stride, expand?, residual?)] shared by both builders."""
    out, cin = [], STEM
    for t, c, s in BLOCKS:
        out.append((cin, cin * t, c, s, t != 1, s == 1 and cin == c))
        cin = c
    return out


def build_torch():
    import torch.nn as nn

    def conv_bn(cin, cout, k, stride=1, groups=1):
        return nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False), \
            nn.BatchNorm2d(cout, eps=BN_EPS)

    class InvertedResidual(nn.Module):
        def __init__(self, cin, hidden, cout, stride, expand, residual):
            super().__init__()
            self.residual, self.expand_on = residual, expand
            if expand:
                self.expand, self.expand_bn = conv_bn(cin, hidden, 1)
            self.dw, self.dw_bn = conv_bn(hidden, hidden, 3, stride, groups=hidden)
            self.project, self.project_bn = conv_bn(hidden, cout, 1)
            self.act = nn.ReLU6()

        def forward(self, x):
            h = self.act(self.expand_bn(self.expand(x))) if self.expand_on else x
            h = self.act(self.dw_bn(self.dw(h)))
            h = self.project_bn(self.project(h))
            return x + h if self.residual else h

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.stem_bn = conv_bn(INPUT[0], STEM, 3, 2)
            self.blocks = nn.ModuleList(InvertedResidual(*p) for p in _plan())
            self.head, self.head_bn = conv_bn(BLOCKS[-1][1], HEAD, 1)
            self.act = nn.ReLU6()
            # adaptive pooling to 1, not mean(dim): XNNPACK delegates the former, not the latter
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(HEAD, NUM_CLASSES)

        def forward(self, x):
            x = self.act(self.stem_bn(self.stem(x)))
            for block in self.blocks:
                x = block(x)
            x = self.act(self.head_bn(self.head(x)))
            return self.fc(self.gap(x).flatten(1))

    return MobileNetV2()


def build_keras():
    import keras
    from keras import layers

    def bn(x, name):
        return layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM_KERAS, name=name)(x)

    def relu6(x):
        return layers.ReLU(max_value=6.0)(x)

    def pad_for(x, stride):
        return (layers.ZeroPadding2D(1)(x), "valid") if stride == 2 else (x, "same")

    inp = keras.Input((INPUT[1], INPUT[2], INPUT[0]), batch_size=1, name="input")
    x, pad = pad_for(inp, 2)
    x = relu6(bn(layers.Conv2D(STEM, 3, 2, padding=pad, use_bias=False, name="stem")(x), "stem_bn"))
    for i, (cin, hidden, cout, stride, expand, residual) in enumerate(_plan()):
        p = f"blocks_{i}_"
        h = x
        if expand:
            h = relu6(bn(layers.Conv2D(hidden, 1, use_bias=False, name=p + "expand")(h), p + "expand_bn"))
        h, pad = pad_for(h, stride)
        h = relu6(bn(layers.DepthwiseConv2D(3, stride, padding=pad, use_bias=False, name=p + "dw")(h),
                     p + "dw_bn"))
        h = bn(layers.Conv2D(cout, 1, use_bias=False, name=p + "project")(h), p + "project_bn")
        x = layers.Add()([x, h]) if residual else h
    x = relu6(bn(layers.Conv2D(HEAD, 1, use_bias=False, name="head")(x), "head_bn"))
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(NUM_CLASSES, name="fc")(x)
    return keras.Model(inp, out, name="mobilenet_v2")


SPEC = ModelSpec(
    name="mobilenet_v2",
    description="MobileNetV2-style (width 0.35, 7 inverted residual blocks) on procedural shapes "
                "(3x96x96, 10 classes)",
    task="classification",
    input_shape=INPUT,
    num_outputs=NUM_CLASSES,
    load_data=load_data,
    build_torch=build_torch,
    build_keras=build_keras,
    transfer=transfer_by_name,
    keras_layout="nhwc",
    train=TrainConfig(epochs=6, batch_size=32, lr=3e-3),
    build_cost_s=360,
)

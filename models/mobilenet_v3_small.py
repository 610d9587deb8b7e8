"""Phone tier: MobileNetV3-Small (Howard et al. 2019) at 3x224x224, calibrated weights, 10 classes.

stem conv3x3/2 (16) + BN + hard-swish -> 11 bottlenecks [expand 1x1 + BN + act (when the expansion
differs from the input width), depthwise kxk + BN + act, squeeze-excite (avg pool -> 1x1 conv + ReLU
-> 1x1 conv + hard-sigmoid -> scale) where the table says so, project 1x1 + BN; residual when
stride 1 and widths equal] -> conv1x1 (576) + BN + hard-swish -> global average pool -> Linear 1024 +
hard-swish -> Linear logits. The table and the SE widths (expansion/4 rounded to 8) are the paper's,
as in torchvision: with a 1000-class head, 2.54M parameters and ~56M MACs at 224x224
(`build_torch(num_classes=1000)`); the 10-class head here has 1.53M. Weights: seeded, BN statistics
re-estimated on `models/data_images.py` shapes at 224x224 (`models/calibrate.py`): latency, size,
parity only.

Twin parity notes:
- stride-2 convs pad explicitly and symmetrically in both (Keras `ZeroPadding2D(k // 2)` + 'valid',
  torch padding=k // 2); stride 1 uses 'same' (symmetric for odd kernels).
- hard-swish x * relu6(x + 3) / 6 and hard-sigmoid relu6(x + 3) / 6: torch nn.Hardswish /
  nn.Hardsigmoid, Keras "hard_silu" / "hard_sigmoid" (Keras 3 defines both this way).
- BN eps 1e-3 in both; Keras BN momentum 0.9 (= torch momentum 0.1). Dropout left out (identity at
  inference).
"""
from __future__ import annotations

from models.data_images import make_dataset
from models.mobilenet_v2_arch import make_divisible
from models.spec import Dataset, ModelSpec, TrainConfig

INPUT = (3, 224, 224)
NUM_CLASSES = 10
BN_EPS = 1e-3
BN_MOMENTUM_KERAS = 0.9
STEM, HEAD, HIDDEN = 16, 576, 1024
# (kernel, expanded width, out width, squeeze-excite, activation "relu"|"hswish", stride): the paper's Table 2
BLOCKS = ((3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
          (5, 96, 40, True, "hswish", 2), (5, 240, 40, True, "hswish", 1), (5, 240, 40, True, "hswish", 1),
          (5, 120, 48, True, "hswish", 1), (5, 144, 48, True, "hswish", 1), (5, 288, 96, True, "hswish", 2),
          (5, 576, 96, True, "hswish", 1), (5, 576, 96, True, "hswish", 1))


def load_data(seed: int) -> Dataset:
    return Dataset(*make_dataset(seed, n_train=256, n_test=64, size=INPUT[1]))


def _plan():
    """-> [(in, kernel, expanded, out, se_width or 0, act, stride, expand?, residual?)] for both builders."""
    out, cin = [], STEM
    for k, exp, c, se, act, s in BLOCKS:
        out.append((cin, k, exp, c, make_divisible(exp // 4) if se else 0, act, s, exp != cin, s == 1 and cin == c))
        cin = c
    return out


def build_torch(num_classes: int = NUM_CLASSES):
    import torch.nn as nn

    def act_of(name):
        return nn.ReLU() if name == "relu" else nn.Hardswish()

    class Block(nn.Module):
        def __init__(self, cin, k, exp, cout, se, act, stride, expand, residual):
            super().__init__()
            self.expand_on, self.se_on, self.residual = expand, bool(se), residual
            if expand:
                self.expand = nn.Conv2d(cin, exp, 1, bias=False)
                self.expand_bn = nn.BatchNorm2d(exp, eps=BN_EPS)
            self.dw = nn.Conv2d(exp, exp, k, stride, padding=k // 2, groups=exp, bias=False)
            self.dw_bn = nn.BatchNorm2d(exp, eps=BN_EPS)
            self.act = act_of(act)
            if se:
                # adaptive pooling to 1, not mean(dim): XNNPACK delegates the former, not the latter
                self.se_pool = nn.AdaptiveAvgPool2d(1)
                self.se_fc1 = nn.Conv2d(exp, se, 1)
                self.se_relu = nn.ReLU()
                self.se_fc2 = nn.Conv2d(se, exp, 1)
                self.se_gate = nn.Hardsigmoid()
            self.project = nn.Conv2d(exp, cout, 1, bias=False)
            self.project_bn = nn.BatchNorm2d(cout, eps=BN_EPS)

        def forward(self, x):
            h = self.act(self.expand_bn(self.expand(x))) if self.expand_on else x
            h = self.act(self.dw_bn(self.dw(h)))
            if self.se_on:
                h = h * self.se_gate(self.se_fc2(self.se_relu(self.se_fc1(self.se_pool(h)))))
            h = self.project_bn(self.project(h))
            return x + h if self.residual else h

    class MobileNetV3Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(INPUT[0], STEM, 3, 2, padding=1, bias=False)
            self.stem_bn = nn.BatchNorm2d(STEM, eps=BN_EPS)
            self.hswish = nn.Hardswish()
            self.blocks = nn.ModuleList(Block(*p) for p in _plan())
            self.head = nn.Conv2d(BLOCKS[-1][2], HEAD, 1, bias=False)
            self.head_bn = nn.BatchNorm2d(HEAD, eps=BN_EPS)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc1 = nn.Linear(HEAD, HIDDEN)
            self.fc = nn.Linear(HIDDEN, num_classes)

        def forward(self, x):
            x = self.hswish(self.stem_bn(self.stem(x)))
            for block in self.blocks:
                x = block(x)
            x = self.hswish(self.head_bn(self.head(x)))
            return self.fc(self.hswish(self.fc1(self.gap(x).flatten(1))))

    return MobileNetV3Small()


def build_keras(num_classes: int = NUM_CLASSES):
    import keras
    from keras import layers

    def bn(x, name):
        return layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM_KERAS, name=name)(x)

    def act(x, name):
        return layers.ReLU()(x) if name == "relu" else layers.Activation("hard_silu")(x)

    def pad_for(x, k, stride):
        return (layers.ZeroPadding2D(k // 2)(x), "valid") if stride == 2 else (x, "same")

    inp = keras.Input((INPUT[1], INPUT[2], INPUT[0]), batch_size=1, name="input")
    x, pad = pad_for(inp, 3, 2)
    x = act(bn(layers.Conv2D(STEM, 3, 2, padding=pad, use_bias=False, name="stem")(x), "stem_bn"), "hswish")
    for i, (cin, k, exp, cout, se, a, stride, expand, residual) in enumerate(_plan()):
        p = f"blocks_{i}_"
        h = x
        if expand:
            h = act(bn(layers.Conv2D(exp, 1, use_bias=False, name=p + "expand")(h), p + "expand_bn"), a)
        h, pad = pad_for(h, k, stride)
        h = act(bn(layers.DepthwiseConv2D(k, stride, padding=pad, use_bias=False, name=p + "dw")(h),
                   p + "dw_bn"), a)
        if se:
            s = layers.GlobalAveragePooling2D(keepdims=True)(h)
            s = layers.Conv2D(se, 1, activation="relu", name=p + "se_fc1")(s)
            s = layers.Conv2D(exp, 1, activation="hard_sigmoid", name=p + "se_fc2")(s)
            h = layers.Multiply()([h, s])
        h = bn(layers.Conv2D(cout, 1, use_bias=False, name=p + "project")(h), p + "project_bn")
        x = layers.Add()([x, h]) if residual else h
    x = act(bn(layers.Conv2D(HEAD, 1, use_bias=False, name="head")(x), "head_bn"), "hswish")
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(HIDDEN, activation="hard_silu", name="fc1")(x)
    out = layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inp, out, name="mobilenet_v3_small")


# calibrated: one pass of BN re-estimation
SPEC = ModelSpec.of(__name__, "MobileNetV3-Small at 224x224 (hard-swish, squeeze-excite), calibrated weights, "
                    "10 classes",
                    keras_layout="nhwc", train=TrainConfig(epochs=1, batch_size=32), calibration_samples=128,
                    tier="phone", weights="calibrated", build_cost_s=260)

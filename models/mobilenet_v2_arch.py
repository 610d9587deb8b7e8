"""MobileNetV2 architecture for both frameworks, parametrized by a block table (`Arch`).

    from models.mobilenet_v2_arch import Arch, standard_blocks, build_torch
    build_torch(Arch(input=(3, 224, 224), num_classes=1000, stem=32, blocks=standard_blocks(1.0), head=1280))

stem conv3x3/2 + BN + ReLU6 -> inverted residual blocks (expand 1x1 + BN + ReLU6 when t != 1,
depthwise 3x3 + BN + ReLU6, project 1x1 + BN, linear; residual when stride 1 and channels equal) ->
conv1x1 + BN + ReLU6 -> global average pool -> dense logits. Used by the toy zoo's `mobilenet_v2`
(its own shortened table) and the phone tier's `mobilenet_v2_224` (the paper's table).

Twin parity notes:
- stride-2 convs: Keras 'same' pads bottom/right only for even inputs, torch pads symmetrically. Both
  twins pad explicitly and symmetrically instead: Keras `ZeroPadding2D(1)` + 'valid', torch padding=1.
  Stride-1 3x3 convs use 'same' / padding=1 (symmetric in both).
- BN eps 1e-3 in both; Keras BN momentum 0.9 (= torch momentum 0.1) so running stats follow alike.
- global average pooling (AdaptiveAvgPool2d(1) / GlobalAveragePooling2D), no flatten: layout-independent.
- the paper's dropout before the classifier is left out (an identity at inference).
"""
from __future__ import annotations

from dataclasses import dataclass

BN_EPS = 1e-3
BN_MOMENTUM_KERAS = 0.9
# the paper's table (expansion t, output channels c, repeats n, first stride s), Sandler et al. 2018
PAPER_TABLE = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1))


@dataclass(frozen=True)
class Arch:
    input: tuple[int, int, int]            # C, H, W
    num_classes: int
    stem: int
    blocks: tuple[tuple[int, int, int], ...]  # one (expansion t, out channels c, stride s) per block
    head: int
    name: str = "mobilenet_v2"


def make_divisible(v: float, divisor: int = 8) -> int:
    """Channel rounding of the reference implementations: nearest multiple, never 10 % below."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def standard_blocks(width: float) -> tuple[tuple[int, int, int], ...]:
    """The paper's table at a width multiplier, one entry per block."""
    return tuple((t, make_divisible(c * width), s if i == 0 else 1)
                 for t, c, n, s in PAPER_TABLE for i in range(n))


def plan(arch: Arch) -> list[tuple[int, int, int, int, bool, bool]]:
    """-> [(in_ch, hidden_ch, out_ch, stride, expand?, residual?)] shared by both builders."""
    out, cin = [], arch.stem
    for t, c, s in arch.blocks:
        out.append((cin, cin * t, c, s, t != 1, s == 1 and cin == c))
        cin = c
    return out


def build_torch(arch: Arch):
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
            self.stem, self.stem_bn = conv_bn(arch.input[0], arch.stem, 3, 2)
            self.blocks = nn.ModuleList(InvertedResidual(*p) for p in plan(arch))
            self.head, self.head_bn = conv_bn(arch.blocks[-1][1], arch.head, 1)
            self.act = nn.ReLU6()
            # adaptive pooling to 1, not mean(dim): XNNPACK delegates the former, not the latter
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(arch.head, arch.num_classes)

        def forward(self, x):
            x = self.act(self.stem_bn(self.stem(x)))
            for block in self.blocks:
                x = block(x)
            x = self.act(self.head_bn(self.head(x)))
            return self.fc(self.gap(x).flatten(1))

    return MobileNetV2()


def build_keras(arch: Arch):
    import keras
    from keras import layers

    def bn(x, name):
        return layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM_KERAS, name=name)(x)

    def relu6(x):
        return layers.ReLU(max_value=6.0)(x)

    def pad_for(x, stride):
        return (layers.ZeroPadding2D(1)(x), "valid") if stride == 2 else (x, "same")

    c, h, w = arch.input
    inp = keras.Input((h, w, c), batch_size=1, name="input")
    x, pad = pad_for(inp, 2)
    x = relu6(bn(layers.Conv2D(arch.stem, 3, 2, padding=pad, use_bias=False, name="stem")(x), "stem_bn"))
    for i, (cin, hidden, cout, stride, expand, residual) in enumerate(plan(arch)):
        p = f"blocks_{i}_"
        h = x
        if expand:
            h = relu6(bn(layers.Conv2D(hidden, 1, use_bias=False, name=p + "expand")(h), p + "expand_bn"))
        h, pad = pad_for(h, stride)
        h = relu6(bn(layers.DepthwiseConv2D(3, stride, padding=pad, use_bias=False, name=p + "dw")(h),
                     p + "dw_bn"))
        h = bn(layers.Conv2D(cout, 1, use_bias=False, name=p + "project")(h), p + "project_bn")
        x = layers.Add()([x, h]) if residual else h
    x = relu6(bn(layers.Conv2D(arch.head, 1, use_bias=False, name="head")(x), "head_bn"))
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(arch.num_classes, name="fc")(x)
    return keras.Model(inp, out, name=arch.name)

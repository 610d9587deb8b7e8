"""The operator probes: one line per operator, a tiny torch module and a tiny Keras model each.

Each framework's artifact is compared with its own framework's model on the same input, so the two
twins need not agree numerically (e.g. Keras GRU's reset_after); they exercise the same operator.
Weights come from fixed seeds (torch.manual_seed / keras.utils.set_random_seed) at build time.
"""
from __future__ import annotations

from probes import Probe

IMG = ((1, 8, 16, 16),)
SEQ = ((1, 8, 16),)


def _torch(fn, **modules):
    """A torch module whose forward is `fn(self, *inputs)`; `modules` are built under seed 0."""
    def build():
        import torch

        class P(torch.nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                for k, make in modules.items():
                    setattr(self, k, make(torch.nn))

        # a fixed-arity forward: torch.export (and its dynamic_shapes) sees one parameter per input,
        # the same signature the PT2E-quantized GraphModule has on its second export
        class P1(P):
            def forward(self, x):
                return fn(self, torch, x)

        class P2(P):
            def forward(self, a, b):
                return fn(self, torch, a, b)
        return (P1 if fn.__code__.co_argcount == 3 else P2)().eval()
    return build


def _keras(fn, shapes, nhwc=False, dynamic_axes=()):
    """A functional Keras model: inputs in0, in1, ... (batch dim None), outputs = fn(keras, *inputs)."""
    def build():
        import keras
        keras.utils.set_random_seed(0)
        ins = []
        for i, s in enumerate(shapes):
            s = list(s[1:])
            if nhwc and len(s) == 3:
                s = [s[1], s[2], s[0]]
            for a in dynamic_axes:
                s[a - 1] = None
            ins.append(keras.Input(shape=tuple(s), name=f"in{i}"))
        out = fn(keras, *ins)
        return keras.Model(ins, out)
    return build


def _bn_torch(nn):
    import torch
    bn = nn.BatchNorm2d(8)
    g = torch.Generator().manual_seed(1)
    bn.running_mean.copy_(torch.randn(8, generator=g) * 0.5)
    bn.running_var.copy_(torch.rand(8, generator=g) + 0.5)
    bn.weight.data.copy_(torch.rand(8, generator=g) + 0.5)
    bn.bias.data.copy_(torch.randn(8, generator=g) * 0.1)
    return bn


def _bn_keras(keras, x):
    import numpy as np
    layer = keras.layers.BatchNormalization(epsilon=1e-5)
    y = layer(x)
    rng = np.random.default_rng(1)
    layer.set_weights([rng.random(8).astype("float32") + 0.5, rng.standard_normal(8).astype("float32") * 0.1,
                       rng.standard_normal(8).astype("float32") * 0.5, rng.random(8).astype("float32") + 0.5])
    return y


def _rfft_mag_keras(keras, x):
    re, im = keras.ops.rfft(x)
    return keras.ops.sqrt(re * re + im * im)


def _dyn_torch():
    import torch
    return ({1: torch.export.Dim("seq", min=2, max=64)},)


def _p(name, t, k, shapes, keras_dynamic_axes=(), **kw):
    """t: forward fn, or (forward fn, {attribute: nn -> module}); k: Keras fn (keras, *inputs) -> outputs."""
    torch_build = _torch(t[0], **t[1]) if isinstance(t, tuple) else _torch(t)
    return Probe(name, torch_build, _keras(k, shapes, kw.get("nhwc", False), keras_dynamic_axes), shapes, **kw)


_LIST = [
    _p("conv2d", (lambda s, T, x: s.m(x), {"m": lambda nn: nn.Conv2d(8, 16, 3, padding=1)}),
       lambda K, x: K.layers.Conv2D(16, 3, padding="same")(x), IMG, nhwc=True),
    _p("depthwise_conv2d", (lambda s, T, x: s.m(x), {"m": lambda nn: nn.Conv2d(8, 8, 3, padding=1, groups=8)}),
       lambda K, x: K.layers.DepthwiseConv2D(3, padding="same")(x), IMG, nhwc=True),
    _p("transposed_conv2d", (lambda s, T, x: s.m(x), {"m": lambda nn: nn.ConvTranspose2d(8, 4, 2, stride=2)}),
       lambda K, x: K.layers.Conv2DTranspose(4, 2, strides=2)(x), IMG, nhwc=True),
    _p("dense", (lambda s, T, x: s.m(x), {"m": lambda nn: nn.Linear(32, 16)}),
       lambda K, x: K.layers.Dense(16)(x), ((1, 32),)),
    _p("matmul", lambda s, T, a, b: T.matmul(a, b), lambda K, a, b: K.ops.matmul(a, b), ((1, 8, 16), (1, 16, 4))),
    _p("add_broadcast", lambda s, T, a, b: a + b, lambda K, a, b: K.ops.add(a, b), ((1, 8, 16), (1, 1, 16))),
    _p("mul_broadcast", lambda s, T, a, b: a * b, lambda K, a, b: K.ops.multiply(a, b), ((1, 8, 16), (1, 1, 16))),
    _p("relu6", lambda s, T, x: T.nn.functional.relu6(x * 4), lambda K, x: K.ops.relu6(x * 4), SEQ),
    _p("hardswish", lambda s, T, x: T.nn.functional.hardswish(x * 4), lambda K, x: K.ops.hard_swish(x * 4), SEQ),
    _p("gelu", lambda s, T, x: T.nn.functional.gelu(x), lambda K, x: K.ops.gelu(x, approximate=False), SEQ),
    _p("sigmoid", lambda s, T, x: T.sigmoid(x), lambda K, x: K.ops.sigmoid(x), SEQ),
    _p("softmax", lambda s, T, x: T.softmax(x, dim=-1), lambda K, x: K.ops.softmax(x, axis=-1), SEQ),
    _p("layernorm", (lambda s, T, x: s.m(x), {"m": lambda nn: nn.LayerNorm(16)}),
       lambda K, x: K.layers.LayerNormalization(epsilon=1e-5)(x), SEQ),
    _p("batchnorm", (lambda s, T, x: s.m(x), {"m": _bn_torch}), _bn_keras, IMG, nhwc=True),
    _p("avg_pool2d", lambda s, T, x: T.nn.functional.avg_pool2d(x, 2),
       lambda K, x: K.layers.AveragePooling2D(2)(x), IMG, nhwc=True),
    _p("max_pool2d", lambda s, T, x: T.nn.functional.max_pool2d(x, 2),
       lambda K, x: K.layers.MaxPooling2D(2)(x), IMG, nhwc=True),
    _p("resize_bilinear", lambda s, T, x: T.nn.functional.interpolate(x, scale_factor=2, mode="bilinear"),
       lambda K, x: K.layers.UpSampling2D(2, interpolation="bilinear")(x), IMG, nhwc=True),
    _p("resize_nearest", lambda s, T, x: T.nn.functional.interpolate(x, scale_factor=2, mode="nearest"),
       lambda K, x: K.layers.UpSampling2D(2, interpolation="nearest")(x), IMG, nhwc=True),
    _p("concat", lambda s, T, a, b: T.cat([a, b], dim=1), lambda K, a, b: K.ops.concatenate([a, b], axis=1),
       ((1, 8, 16), (1, 4, 16))),
    _p("split", lambda s, T, x: tuple(p * 2 for p in T.split(x, [10, 6], dim=1)),
       lambda K, x: [p * 2 for p in K.ops.split(x, [10], axis=1)], ((1, 16, 8),), outputs=("float", "float")),
    _p("reshape", lambda s, T, x: (x * 2).reshape(1, 32, 4), lambda K, x: K.ops.reshape(x * 2, (-1, 32, 4)), SEQ),
    _p("transpose", lambda s, T, x: (x * 2).permute(0, 2, 1), lambda K, x: K.ops.transpose(x * 2, (0, 2, 1)), SEQ),
    _p("pad", lambda s, T, x: T.nn.functional.pad(x, (1, 2)), lambda K, x: K.ops.pad(x, [[0, 0], [0, 0], [1, 2]]),
       SEQ),
    _p("slice", lambda s, T, x: x[:, 2:6, 1:13:2] * 2, lambda K, x: x[:, 2:6, 1:13:2] * 2, SEQ),
    _p("gather", lambda s, T, x: T.index_select(x, 1, T.tensor([3, 0, 7, 1])),
       lambda K, x: K.ops.take(x, [3, 0, 7, 1], axis=1), SEQ),
    _p("argmax", lambda s, T, x: T.argmax(x, dim=-1), lambda K, x: K.ops.argmax(x, axis=-1), ((1, 4, 64),),
       outputs=("exact",), gen="ranked"),
    _p("topk", lambda s, T, x: tuple(T.topk(x, 5, dim=-1)), lambda K, x: list(K.ops.top_k(x, 5)), ((1, 64),),
       outputs=("float", "exact"), gen="ranked"),
    _p("cumsum", lambda s, T, x: T.cumsum(x, dim=-1), lambda K, x: K.ops.cumsum(x, axis=-1), SEQ),
    _p("where", lambda s, T, a, b: T.where(a > 0, a, b), lambda K, a, b: K.ops.where(a > 0, a, b), SEQ * 2),
    _p("flip", lambda s, T, x: T.flip(x * 2, [-1]), lambda K, x: K.ops.flip(x * 2, axis=-1), SEQ),
    _p("rfft", lambda s, T, x: T.fft.rfft(x, dim=-1).abs(), _rfft_mag_keras, ((1, 4, 32),)),
    _p("isnan_isinf", lambda s, T, x: (T.isnan(x) | T.isinf(x)).float(),
       lambda K, x: K.ops.cast(K.ops.logical_or(K.ops.isnan(x), K.ops.isinf(x)), "float32"), SEQ,
       outputs=("exact",), gen="nan"),
    _p("einsum", lambda s, T, a, b: T.einsum("bhqd,bhkd->bhqk", a, b),
       lambda K, a, b: K.ops.einsum("bhqd,bhkd->bhqk", a, b), ((1, 2, 8, 16), (1, 2, 6, 16))),
    _p("lstm", (lambda s, T, x: s.m(x)[0], {"m": lambda nn: nn.LSTM(16, 32, batch_first=True)}),
       lambda K, x: K.layers.LSTM(32, return_sequences=True)(x), ((1, 10, 16),)),
    _p("gru", (lambda s, T, x: s.m(x)[0], {"m": lambda nn: nn.GRU(16, 32, batch_first=True)}),
       lambda K, x: K.layers.GRU(32, return_sequences=True)(x), ((1, 10, 16),)),
    _p("multihead_attention", (lambda s, T, x: s.m(x, x, x, need_weights=False)[0],
                               {"m": lambda nn: nn.MultiheadAttention(32, 4, batch_first=True)}),
       lambda K, x: K.layers.MultiHeadAttention(4, 8)(x, x), ((1, 10, 32),)),
    _p("dynamic_seq_len", (lambda s, T, x: T.relu(s.m(x)).mean(dim=1), {"m": lambda nn: nn.Linear(16, 8)}),
       lambda K, x: K.ops.mean(K.ops.relu(K.layers.Dense(8)(x)), axis=1), ((1, 10, 16),),
       run_shapes=(((1, 23, 16),),), dynamic=_dyn_torch, keras_dynamic_axes=(1,),
       note="sequence length is dynamic: exported at 10, run at 10 and 23"),
]

PROBES: dict[str, Probe] = {}
for _probe in _LIST:
    if _probe.name in PROBES:
        raise ValueError(f"probe {_probe.name!r} defined twice")
    PROBES[_probe.name] = _probe

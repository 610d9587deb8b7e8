"""MTCNN's three face-detection nets (Zhang et al. 2016) with the real weights that facenet-pytorch ships.

    .venv/bin/python -m pipeline export --models mtcnn_pnet,mtcnn_rnet,mtcnn_onet

facenet-pytorch 2.6.0 ships `facenet_pytorch/data/{pnet,rnet,onet}.pt` (state dicts). Importing the
package pulls torchvision, which does not import here, so the nets are defined in this file with the
same module names and the state dicts are read from the package's data folder (found without
importing it), `torch.load(weights_only=True)`, `load_state_dict(strict=True)`. No network access.

    pnet 3x12x12: conv3 (10) PReLU maxpool2/2 - conv3 (16) PReLU - conv3 (32) PReLU - 1x1 heads
    rnet 3x24x24: conv3 (28) PReLU pool3/2 - conv3 (48) PReLU pool3/2 - conv2 (64) PReLU - dense 128 PReLU - heads
    onet 3x48x48: conv3 (32) PReLU pool3/2 - conv3 (64) PReLU pool3/2 - conv3 (64) PReLU pool2/2 -
                  conv2 (128) PReLU - dense 256 PReLU - heads

Output: one vector per crop, the heads concatenated: [face softmax (2), box regression (4),
landmarks (10, ONet only)], task "detection": parity (max abs diff, SQNR) is what the bench measures;
there is nothing to score on generated crops (the bench's top-1 agreement of this vector is not a
class decision). Inputs: generated face-like crops and non-face images, scaled as facenet-pytorch
does ((pixel - 127.5) / 128).

`prelu="rewrite"` builds the `*_prelu_rewrite` variants: PReLU computed as relu(x) - w * relu(-x)
(the same function and the same state dict), which ExecuTorch's XNNPACK lowering accepts where it
rejects a PReLU after a Linear layer; the plain nets record that failure.

Twin parity notes:
- torch pools use ceil_mode=True; Keras pools use 'valid' where floor and ceil agree and 'same'
  where ceil adds one window at the bottom/right (TF pads the end first, padded cells never win the
  max), checked per pool by `_keras_pool_padding`.
- the dense layers read the conv map flattened as (W, H, C) (the weights come from Caffe via
  permute(0, 3, 2, 1)); the Keras twin flattens NHWC after Permute((2, 1, 3)), the same order.
- PReLU: Keras PReLU with shared_axes=[1, 2] after convs (one slope per channel), per unit after dense.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.data_images import make_image
from models.spec import Dataset, ModelSpec, TrainConfig
from models.transfer import prelu_weights, transfer_by_name


@dataclass(frozen=True)
class Net:
    size: int                                     # input crop is 3 x size x size
    convs: tuple[tuple[int, int, tuple | None], ...]  # (out channels, kernel, (pool kernel, stride) | None)
    dense: tuple[int, ...]                        # hidden dense widths (each + PReLU)
    heads: tuple[tuple[str, int], ...]            # (module name, width): face prob first (softmax)


NETS = {
    "pnet": Net(12, ((10, 3, (2, 2)), (16, 3, None), (32, 3, None)), (),
                (("conv4_1", 2), ("conv4_2", 4))),
    "rnet": Net(24, ((28, 3, (3, 2)), (48, 3, (3, 2)), (64, 2, None)), (128,),
                (("dense5_1", 2), ("dense5_2", 4))),
    "onet": Net(48, ((32, 3, (3, 2)), (64, 3, (3, 2)), (64, 3, (2, 2)), (128, 2, None)), (256,),
                (("dense6_1", 2), ("dense6_2", 4), ("dense6_3", 10))),
}
PRELU_KINDS = ("prelu", "rewrite")


def weights_file(net: str) -> Path:
    """The state dict facenet-pytorch ships; find_spec locates the package without importing it."""
    import importlib.util
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("facenet-pytorch is not installed (make setup installs it from "
                                "requirements-nodeps.txt with --no-deps)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / f"{net}.pt"


def _conv_sizes(net: Net) -> list[int]:
    """Spatial size entering each pool (torch ceil_mode arithmetic), then the final map size."""
    n, sizes = net.size, []
    for _, k, pool in net.convs:
        n = n - k + 1
        if pool:
            sizes.append(n)
            pk, ps = pool
            n = -(-(n - pk) // ps) + 1
    return sizes + [n]


def _keras_pool_padding(n: int, k: int, s: int) -> str:
    ceil_out, floor_out = -(-(n - k) // s) + 1, (n - k) // s + 1
    if ceil_out == floor_out:
        return "valid"
    same_pad = (ceil_out - 1) * s + k - n        # what 'same' pads in total, all of it at the end if 1
    if -(-n // s) == ceil_out and same_pad == 1:
        return "same"
    raise ValueError(f"no Keras padding reproduces ceil_mode pooling {k}/{s} on {n}")


@functools.cache
def _prelu_rewrite_class():
    import torch
    import torch.nn as nn

    class PReLURewrite(nn.Module):
        """relu(x) - w * relu(-x): PReLU without the prelu operator (same `weight` as nn.PReLU)."""

        def __init__(self, num_parameters: int):
            super().__init__()
            self.weight = nn.Parameter(torch.full((num_parameters,), 0.25))

        def forward(self, x):
            w = self.weight.view(1, -1, *([1] * (x.dim() - 2)))
            return torch.relu(x) - w * torch.relu(-x)

    return PReLURewrite


def load_state_dict(net: str) -> dict:
    import torch
    return torch.load(weights_file(net), weights_only=True)


def build_torch(net: str, prelu: str = "prelu", pretrained: bool = True):
    import torch
    import torch.nn as nn
    cfg = NETS[net]
    if prelu not in PRELU_KINDS:
        raise ValueError(f"prelu={prelu!r} not in {PRELU_KINDS}")
    act = nn.PReLU if prelu == "prelu" else _prelu_rewrite_class()

    class MTCNNNet(nn.Module):
        def __init__(self):
            super().__init__()
            cin = 3
            for i, (cout, k, pool) in enumerate(cfg.convs, 1):
                setattr(self, f"conv{i}", nn.Conv2d(cin, cout, k))
                setattr(self, f"prelu{i}", act(cout))
                if pool:
                    setattr(self, f"pool{i}", nn.MaxPool2d(*pool, ceil_mode=True))
                cin = cout
            self.n_conv = len(cfg.convs)
            feat = cin * _conv_sizes(cfg)[-1] ** 2
            for j, width in enumerate(cfg.dense, self.n_conv + 1):
                setattr(self, f"dense{j}", nn.Linear(feat, width))
                setattr(self, f"prelu{j}", act(width))
                feat = width
            for name, width in cfg.heads:
                setattr(self, name, nn.Conv2d(feat, width, 1) if not cfg.dense else nn.Linear(feat, width))

        def forward(self, x):
            for i in range(1, self.n_conv + 1):
                x = getattr(self, f"prelu{i}")(getattr(self, f"conv{i}")(x))
                if hasattr(self, f"pool{i}"):
                    x = getattr(self, f"pool{i}")(x)
            if cfg.dense:
                x = x.permute(0, 3, 2, 1).flatten(1)   # (W, H, C) order, as the shipped weights expect
                for j in range(self.n_conv + 1, self.n_conv + 1 + len(cfg.dense)):
                    x = getattr(self, f"prelu{j}")(getattr(self, f"dense{j}")(x))
            outs = [getattr(self, name)(x).flatten(1) for name, _ in cfg.heads]  # pnet: 1x1 maps
            outs[0] = torch.softmax(outs[0], dim=1)
            return torch.cat(outs, dim=1)

    model = MTCNNNet()
    if pretrained:
        model.load_state_dict(load_state_dict(net), strict=True)
    return model.eval()


def build_keras(net: str):
    import keras
    from keras import layers
    cfg = NETS[net]
    pool_inputs = iter(_conv_sizes(cfg))
    inp = keras.Input((cfg.size, cfg.size, 3), batch_size=1, name="input")
    x = inp
    for i, (cout, k, pool) in enumerate(cfg.convs, 1):
        x = layers.Conv2D(cout, k, name=f"conv{i}")(x)
        x = layers.PReLU(shared_axes=[1, 2], name=f"prelu{i}")(x)
        if pool:
            x = layers.MaxPooling2D(pool[0], pool[1], padding=_keras_pool_padding(next(pool_inputs), *pool),
                                    name=f"pool{i}")(x)
    n_conv = len(cfg.convs)
    if cfg.dense:
        x = layers.Flatten()(layers.Permute((2, 1, 3))(x))   # NHWC -> (W, H, C) order, as torch
        for j, width in enumerate(cfg.dense, n_conv + 1):
            x = layers.PReLU(name=f"prelu{j}")(layers.Dense(width, name=f"dense{j}")(x))
        outs = [layers.Dense(width, name=name)(x) for name, width in cfg.heads]
    else:
        outs = [layers.Flatten()(layers.Conv2D(width, 1, name=name)(x)) for name, width in cfg.heads]
    outs[0] = layers.Softmax()(outs[0])
    return keras.Model(inp, layers.Concatenate()(outs), name=f"mtcnn_{net}")


def transfer(torch_model, keras_model) -> list[str]:
    # the rewrite variant's PReLURewrite holds the same (C,) slopes as nn.PReLU
    return transfer_by_name(torch_model, keras_model, extra={_prelu_rewrite_class(): prelu_weights})


def face_crop(rng: np.random.Generator, size: int) -> np.ndarray:
    """A face-like crop in [0, 1], CHW: skin-toned ellipse, darker eyes and mouth, random pose jitter."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.ones((3, size, size), np.float32) * rng.uniform(0.1, 0.9, (3, 1, 1))
    cy, cx = 0.5 + rng.normal(0, 0.05, 2)
    ry, rx = rng.uniform(0.38, 0.48), rng.uniform(0.28, 0.38)
    face = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    skin = np.array([0.85, 0.65, 0.5]) * rng.uniform(0.5, 1.1) + rng.normal(0, 0.04, 3)
    img = np.where(face[None], skin[:, None, None], img)
    dark = skin * rng.uniform(0.15, 0.4)
    for ex in (cx - rx * 0.45, cx + rx * 0.45):   # eyes
        eye = ((yy - (cy - ry * 0.25)) / 0.05) ** 2 + ((xx - ex) / 0.07) ** 2 <= 1
        img = np.where(eye[None], dark[:, None, None], img)
    mouth = (np.abs(yy - (cy + ry * 0.45)) < 0.03) & (np.abs(xx - cx) < rx * 0.45)
    img = np.where(mouth[None], dark[:, None, None], img)
    return np.clip(img + rng.normal(0, 0.04, img.shape), 0, 1).astype(np.float32)


def make_dataset(seed: int, n_train: int, n_test: int, size: int):
    """Half face-like crops (label 1), half generated shapes/textures (label 0), scaled like MTCNN's input."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    y = (np.arange(n) % 2).astype(np.int64)
    rng.shuffle(y)
    x = np.stack([face_crop(rng, size) if c else make_image(int(rng.integers(10)), rng, size) for c in y])
    x = ((x * 255.0 - 127.5) / 128.0).astype(np.float32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def spec(net: str, prelu: str = "prelu") -> ModelSpec:
    """The registry entry of one net (`models/mtcnn_<net>[_prelu_rewrite].py` calls this)."""
    cfg = NETS[net]
    name = f"mtcnn_{net}" + ("_prelu_rewrite" if prelu == "rewrite" else "")
    heads = " + ".join(f"{n} ({w})" for n, w in cfg.heads)
    return ModelSpec(
        name=name,
        description=f"MTCNN {net.upper()} with facenet-pytorch's shipped weights"
                    + (", PReLU rewritten as relu(x) - w*relu(-x)" if prelu == "rewrite" else "")
                    + f" (3x{cfg.size}x{cfg.size}; output {heads} concatenated)",
        task="detection",
        input_shape=(3, cfg.size, cfg.size),
        num_outputs=sum(w for _, w in cfg.heads),
        load_data=lambda seed: Dataset(*make_dataset(seed, n_train=256, n_test=128, size=cfg.size)),
        build_torch=functools.partial(build_torch, net, prelu),
        build_keras=functools.partial(build_keras, net),
        transfer=transfer,
        keras_layout="nhwc",
        train=TrainConfig(epochs=1),   # pretrained: nothing trains
        calibration_samples=128,
        tier="phone",
        weights="pretrained",
        build_cost_s=25,
    )

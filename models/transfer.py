"""Copy trained PyTorch weights into the Keras twin (the weight-transfer twin).

Layers are matched by name: a Keras layer `blocks_0_conv` takes the weights of the torch module
`blocks.0.conv`. Each converter knows one layer type's layout difference (OIHW vs HWIO, Linear's
transposed weight, LSTM/GRU bias layouts, PReLU slopes). A Keras layer with weights but no
converter, or no torch module of its name, is an error that names it: silent partial transfers are
how twins drift.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def _conv(mod, layer) -> list[np.ndarray]:
    w = _np(mod.weight)
    if layer.__class__.__name__ == "DepthwiseConv2D":
        # torch (C*m, 1, kh, kw) -> keras (kh, kw, C, m)
        c_out, _, kh, kw = w.shape
        m = c_out // mod.in_channels
        w = w.reshape(mod.in_channels, m, kh, kw).transpose(2, 3, 0, 1)
    elif w.ndim == 4:
        w = w.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif w.ndim == 3:
        w = w.transpose(2, 1, 0)     # OIW -> WIO (Conv1D)
    return [w] + ([_np(mod.bias)] if mod.bias is not None else [])


def _conv_transpose(mod, layer) -> list[np.ndarray]:
    # torch ConvTranspose2d (I, O, kh, kw) -> keras Conv2DTranspose (kh, kw, O, I)
    w = _np(mod.weight).transpose(2, 3, 1, 0)
    return [w] + ([_np(mod.bias)] if mod.bias is not None else [])


def _linear(mod, layer) -> list[np.ndarray]:
    return [_np(mod.weight).T] + ([_np(mod.bias)] if mod.bias is not None else [])


def _batchnorm(mod, layer) -> list[np.ndarray]:
    if abs(layer.epsilon - mod.eps) > 1e-12:
        raise ValueError(f"{layer.name}: epsilon {layer.epsilon} != torch eps {mod.eps}")
    return [_np(mod.weight), _np(mod.bias), _np(mod.running_mean), _np(mod.running_var)]


def _layernorm(mod, layer) -> list[np.ndarray]:
    if abs(layer.epsilon - mod.eps) > 1e-12:
        raise ValueError(f"{layer.name}: epsilon {layer.epsilon} != torch eps {mod.eps}")
    if tuple(mod.normalized_shape) != (mod.weight.shape[-1],):
        raise ValueError(f"{layer.name}: only LayerNorm over the last axis transfers")
    return [_np(mod.weight), _np(mod.bias)]


def prelu_weights(mod, layer) -> list[np.ndarray]:
    """torch PReLU (C,) -> Keras PReLU alpha: (1, 1, C) with shared_axes=[1, 2] after a conv (NHWC),
    (C,) after a dense layer. Public: a model's own PReLU variant module passes it as `extra`."""
    w = _np(mod.weight)
    (shape,) = [tuple(v.shape) for v in layer.get_weights()]
    if int(np.prod(shape)) != w.size:
        raise ValueError(f"{layer.name}: torch PReLU has {w.size} slopes, Keras alpha is {shape} "
                         f"(shared_axes must cover every axis but the channels)")
    return [w.reshape(shape)]


def _embedding(mod, layer) -> list[np.ndarray]:
    # (num_embeddings, dim) in both: Keras Embedding, or a (length, dim) position table
    return [_np(mod.weight)]


def _lstm(mod, layer) -> list[np.ndarray]:
    # gate order i, f, g(c), o is the same in both; Keras has one bias = b_ih + b_hh
    if mod.num_layers != 1 or mod.bidirectional:
        raise ValueError(f"{layer.name}: only single-layer unidirectional LSTM transfers")
    return [_np(mod.weight_ih_l0).T, _np(mod.weight_hh_l0).T, _np(mod.bias_ih_l0) + _np(mod.bias_hh_l0)]


def _gru(mod, layer) -> list[np.ndarray]:
    # torch gates r, z, n; Keras z, r, h with reset_after=True keeping both biases (2, 3H)
    if not getattr(layer, "reset_after", True) and not getattr(layer.cell, "reset_after", True):
        raise ValueError(f"{layer.name}: the Keras GRU must use reset_after=True to match torch")
    h = mod.hidden_size

    def reorder(a):  # rows r,z,n -> z,r,n
        return np.concatenate([a[h:2 * h], a[:h], a[2 * h:]], axis=0)

    return [reorder(_np(mod.weight_ih_l0)).T, reorder(_np(mod.weight_hh_l0)).T,
            np.stack([reorder(_np(mod.bias_ih_l0)), reorder(_np(mod.bias_hh_l0))])]


def _torch_converters() -> dict[type, Callable]:
    import torch.nn as nn
    return {nn.Conv2d: _conv, nn.Conv1d: _conv, nn.ConvTranspose2d: _conv_transpose,
            nn.Linear: _linear, nn.BatchNorm2d: _batchnorm, nn.BatchNorm1d: _batchnorm,
            nn.LayerNorm: _layernorm, nn.Embedding: _embedding, nn.LSTM: _lstm, nn.GRU: _gru,
            nn.PReLU: prelu_weights}


def transfer_by_name(torch_model: Any, keras_model: Any,
                     extra: dict[type, Callable] | None = None) -> list[str]:
    """Copy weights for every Keras layer that has any; returns the names transferred."""
    converters = {**_torch_converters(), **(extra or {})}
    modules = {name.replace(".", "_"): m for name, m in torch_model.named_modules() if name}
    done = []
    for layer in _flatten_layers(keras_model):
        if not layer.weights:
            continue
        mod = modules.get(layer.name)
        if mod is None:
            raise KeyError(f"Keras layer {layer.name!r} has weights but no torch module of that name "
                           f"(torch has {sorted(modules)[:20]}...)")
        conv = next((c for t, c in converters.items() if type(mod) is t), None)
        if conv is None:
            raise TypeError(f"no weight converter for torch {type(mod).__name__} -> Keras "
                            f"{type(layer).__name__} ({layer.name})")
        weights = conv(mod, layer)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(w.shape) for w in weights]
        if expected != got:
            raise ValueError(f"{layer.name}: shapes {got} from torch do not fit Keras {expected}")
        layer.set_weights(weights)
        done.append(layer.name)
    return done


def _flatten_layers(model) -> list:
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers and not layer.weights == [] and \
                layer.__class__.__name__ in ("Functional", "Sequential", "Model"):
            out.extend(_flatten_layers(layer))
        else:
            out.append(layer)
    return out

"""Building blocks shared by the reference models, written once per framework so the twins agree.

Keras layers here are weightless glue (the weights live in standard Dense/Conv layers named like the
torch modules, so `transfer_by_name` stays generic) except `AddPositionEmbedding`, whose single
(length, dim) weight takes a torch `nn.Embedding`'s weight (same layout). They are registered as
serializable so `keras.Model.from_config` (the pipeline's batch-free training clone) can rebuild them.
Frameworks are imported lazily: `torch_*` / `keras_*` functions return classes.
"""
from __future__ import annotations

import functools


@functools.cache
def keras_layers():
    """-> namespace with the custom Keras layers (built on first use, registered once)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="mobilebench")
    class ScaledDotProductAttention(keras.layers.Layer):
        """softmax(q k^T / sqrt(d_head)) v over `num_heads` heads; inputs [q, k, v] each (B, L, D).

        Same op order as `torch_layers().SelfAttention`: q is scaled before the matmul."""

        def __init__(self, num_heads: int, **kwargs):
            super().__init__(**kwargs)
            self.num_heads = num_heads

        def _split(self, x):
            _, length, dim = x.shape
            x = ops.reshape(x, (-1, length, self.num_heads, dim // self.num_heads))
            return ops.transpose(x, (0, 2, 1, 3))  # B, H, L, dh

        def call(self, inputs):
            q, k, v = inputs
            _, length, dim = q.shape
            d_head = dim // self.num_heads
            q = self._split(q) * (1.0 / float(d_head) ** 0.5)
            k, v = self._split(k), self._split(v)
            att = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))), axis=-1)
            out = ops.transpose(ops.matmul(att, v), (0, 2, 1, 3))  # B, L, H, dh
            return ops.reshape(out, (-1, length, dim))

        def compute_output_shape(self, input_shapes):
            return input_shapes[0]

        def get_config(self):
            return {**super().get_config(), "num_heads": self.num_heads}

    @keras.saving.register_keras_serializable(package="mobilebench")
    class AddPositionEmbedding(keras.layers.Layer):
        """x + learned (length, dim) table; transfers from a torch nn.Embedding(length, dim)."""

        def build(self, input_shape):
            self.embeddings = self.add_weight(shape=(input_shape[-2], input_shape[-1]),
                                              initializer=keras.initializers.RandomNormal(stddev=0.02),
                                              name="embeddings")

        def call(self, x):
            return x + self.embeddings[None]

    class NS:
        pass

    ns = NS()
    ns.ScaledDotProductAttention = ScaledDotProductAttention
    ns.AddPositionEmbedding = AddPositionEmbedding
    return ns


@functools.cache
def torch_layers():
    import torch
    import torch.nn as nn

    class SelfAttention(nn.Module):
        """Explicit multi-head self-attention: Linear q/k/v/out (no fused in_proj), no dropout, no mask."""

        def __init__(self, dim: int, num_heads: int):
            super().__init__()
            assert dim % num_heads == 0
            self.num_heads, self.d_head = num_heads, dim // num_heads
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)
            self.out = nn.Linear(dim, dim)

        def _split(self, x):
            b, length, _ = x.shape
            return x.reshape(b, length, self.num_heads, self.d_head).transpose(1, 2)

        def forward(self, x):
            b, length, dim = x.shape
            q = self._split(self.q(x)) * (1.0 / float(self.d_head) ** 0.5)
            k, v = self._split(self.k(x)), self._split(self.v(x))
            att = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
            return self.out((att @ v).transpose(1, 2).reshape(b, length, dim))

    class NS:
        pass

    ns = NS()
    ns.SelfAttention = SelfAttention
    return ns

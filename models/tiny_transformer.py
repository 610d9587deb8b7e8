"""Tiny Transformer encoder classifying generated token-feature sequences (24 x 32, 9 classes).

input Linear(32 -> 32) + learned position table -> 2 pre-LN encoder blocks [LayerNorm -> multi-head
self-attention (4 heads, explicit q/k/v/out Linear) -> residual; LayerNorm -> Linear 64 -> GELU ->
Linear 32 -> residual] -> LayerNorm -> mean over the sequence -> Linear logits.
Data: `models/data_tokens.py` (ordered pair of two key tokens among fillers; 4000 train / 800 test).
Input (N, 24, 32) in both frameworks (layout "same").

Twin parity notes:
- attention is written out in both frameworks (`models/layers.py`: torch `SelfAttention`, Keras
  `ScaledDotProductAttention` fed by Dense q/k/v layers, then a Dense out projection), with q scaled
  by 1/sqrt(d_head) before the matmul in both. Not used: torch nn.MultiheadAttention (one fused
  in_proj_weight (3D, D), and its fast path / need_weights behaviour differ between train and eval)
  and keras.layers.MultiHeadAttention (EinsumDense kernels shaped (D, heads, d_head) and
  (heads, d_head, D)); the two compute the same function, but each needs its own weight reshaping
  and they export to different op patterns (einsum vs matmul), so explicit layers keep the twins,
  the transfer and the exported graphs simple.
- GELU is exact (erf) in both: torch nn.GELU() default, Keras activation "gelu" (approximate=False).
- LayerNorm eps 1e-5 (torch default) set in Keras too (Keras default is 1e-3); transfer checks it.
- the position table is a torch nn.Embedding(24, 32) whose weight is added (no lookup) and a Keras
  `AddPositionEmbedding` layer with the same (24, 32) weight.
"""
from __future__ import annotations

from models.data_tokens import FEAT, LENGTH, NUM_CLASSES, make_dataset
from models.layers import keras_layers, torch_layers
from models.spec import Dataset, ModelSpec, TrainConfig

INPUT = (LENGTH, FEAT)
DIM, HEADS, MLP, DEPTH = 32, 4, 64, 2
LN_EPS = 1e-5


def load_data(seed: int) -> Dataset:
    return Dataset(*make_dataset(seed, n_train=4000, n_test=800))


def build_torch():
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(DIM, eps=LN_EPS)
            self.attn = torch_layers().SelfAttention(DIM, HEADS)
            self.ln2 = nn.LayerNorm(DIM, eps=LN_EPS)
            self.fc1 = nn.Linear(DIM, MLP)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(MLP, DIM)

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.fc2(self.act(self.fc1(self.ln2(x))))

    class TinyTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(FEAT, DIM)
            self.pos = nn.Embedding(LENGTH, DIM)
            nn.init.normal_(self.pos.weight, std=0.02)
            self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
            self.ln = nn.LayerNorm(DIM, eps=LN_EPS)
            self.fc = nn.Linear(DIM, NUM_CLASSES)

        def forward(self, x):
            x = self.embed(x) + self.pos.weight
            for block in self.blocks:
                x = block(x)
            return self.fc(self.ln(x).mean(dim=1))

    return TinyTransformer()


def build_keras():
    import keras
    from keras import layers
    kl = keras_layers()

    inp = keras.Input(INPUT, batch_size=1, name="input")
    x = layers.Dense(DIM, name="embed")(inp)
    x = kl.AddPositionEmbedding(name="pos")(x)
    for i in range(DEPTH):
        p = f"blocks_{i}_"
        h = layers.LayerNormalization(epsilon=LN_EPS, name=p + "ln1")(x)
        q, k, v = (layers.Dense(DIM, name=p + f"attn_{n}")(h) for n in "qkv")
        h = kl.ScaledDotProductAttention(HEADS, name=p + "attn_sdpa")([q, k, v])
        x = layers.Add()([x, layers.Dense(DIM, name=p + "attn_out")(h)])
        h = layers.LayerNormalization(epsilon=LN_EPS, name=p + "ln2")(x)
        h = layers.Dense(MLP, activation="gelu", name=p + "fc1")(h)
        x = layers.Add()([x, layers.Dense(DIM, name=p + "fc2")(h)])
    x = layers.LayerNormalization(epsilon=LN_EPS, name="ln")(x)
    x = layers.GlobalAveragePooling1D()(x)
    out = layers.Dense(NUM_CLASSES, name="fc")(x)
    return keras.Model(inp, out, name="tiny_transformer")


SPEC = ModelSpec.of(__name__, "2-block pre-LN Transformer encoder (dim 32, 4 heads, GELU MLP 64) on generated "
                    "token-feature sequences (24x32, 9 classes)",
                    keras_layout="same", train=TrainConfig(epochs=12, batch_size=64, lr=2e-3), build_cost_s=140)

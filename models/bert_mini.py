"""Phone tier: BERT-Mini-style encoder (4 layers, hidden 256, 4 heads, FFN 1024, sequence 128), seeded.

input token vectors (128 x 256) + learned position table -> LayerNorm -> 4 post-LN encoder layers
[multi-head self-attention (explicit q/k/v/out Linear) -> residual -> LayerNorm; Linear 1024 ->
GELU -> Linear 256 -> residual -> LayerNorm] -> mean over the sequence -> Linear logits (9 classes).
The shape of BERT-Mini (Turc et al. 2019, L=4 H=256), without its 30522 x 256 token table:
3.19M parameters, ~0.44G MACs per sequence. Data: `models/data_tokens.py` at 128 x 256 (the toy
task: an ordered pair of key tokens among fillers), 128 calibration + 64 held-out sequences.

Input choice: float token vectors, i.e. what the embedding lookup returns; the app does the lookup
(a gather from the table it ships). Float inputs are the pipeline's data contract (`Dataset`, the
calibration sets, every runtime adapter's feed), so the encoder exports on every path as it is; token
ids (int64 in torch, int32 in TFLite) would need their own input handling per path and runtime, and
the gather is not the compute this tier measures. Mean pooling (as the toy transformer), not BERT's
[CLS] + tanh pooler: one reduce instead of a slice, and no slicing layer in the Keras twin.

Weights: "calibrated" like the other phone-size models, which here means seeded only: LayerNorm
computes its statistics at run time, there are no BatchNorm statistics to re-estimate. 0.44G MACs
per sample do not train on 2 cores in the export budget; accuracy is not meaningful.

Twin parity notes: as `models/tiny_transformer.py` (explicit attention in `models/layers.py`, exact
GELU, LayerNorm eps 1e-12 (BERT's) in both, position table as nn.Embedding).
"""
from __future__ import annotations

from models.data_tokens import NUM_CLASSES, make_dataset
from models.layers import keras_layers, torch_layers
from models.spec import Dataset, ModelSpec, TrainConfig

LENGTH, DIM, HEADS, FFN, DEPTH = 128, 256, 4, 1024, 4
INPUT = (LENGTH, DIM)
LN_EPS = 1e-12   # BERT's


def load_data(seed: int) -> Dataset:
    return Dataset(*make_dataset(seed, n_train=128, n_test=64, length=LENGTH, feat=DIM))


def build_torch():
    import torch.nn as nn

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch_layers().SelfAttention(DIM, HEADS)
            self.ln1 = nn.LayerNorm(DIM, eps=LN_EPS)
            self.fc1 = nn.Linear(DIM, FFN)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(FFN, DIM)
            self.ln2 = nn.LayerNorm(DIM, eps=LN_EPS)

        def forward(self, x):
            x = self.ln1(x + self.attn(x))
            return self.ln2(x + self.fc2(self.act(self.fc1(x))))

    class BertMini(nn.Module):
        def __init__(self):
            super().__init__()
            self.pos = nn.Embedding(LENGTH, DIM)
            nn.init.normal_(self.pos.weight, std=0.02)
            self.ln = nn.LayerNorm(DIM, eps=LN_EPS)
            self.layers = nn.ModuleList(Layer() for _ in range(DEPTH))
            self.fc = nn.Linear(DIM, NUM_CLASSES)

        def forward(self, x):
            x = self.ln(x + self.pos.weight)
            for layer in self.layers:
                x = layer(x)
            return self.fc(x.mean(dim=1))

    return BertMini()


def build_keras():
    import keras
    from keras import layers
    kl = keras_layers()

    inp = keras.Input(INPUT, batch_size=1, name="input")
    x = kl.AddPositionEmbedding(name="pos")(inp)
    x = layers.LayerNormalization(epsilon=LN_EPS, name="ln")(x)
    for i in range(DEPTH):
        p = f"layers_{i}_"
        q, k, v = (layers.Dense(DIM, name=p + f"attn_{n}")(x) for n in "qkv")
        h = kl.ScaledDotProductAttention(HEADS, name=p + "attn_sdpa")([q, k, v])
        x = layers.LayerNormalization(epsilon=LN_EPS, name=p + "ln1")(
            layers.Add()([x, layers.Dense(DIM, name=p + "attn_out")(h)]))
        h = layers.Dense(FFN, activation="gelu", name=p + "fc1")(x)
        x = layers.LayerNormalization(epsilon=LN_EPS, name=p + "ln2")(
            layers.Add()([x, layers.Dense(DIM, name=p + "fc2")(h)]))
    x = layers.GlobalAveragePooling1D()(x)
    out = layers.Dense(NUM_CLASSES, name="fc")(x)
    return keras.Model(inp, out, name="bert_mini")


# calibrated: nothing trains (see the docstring)
SPEC = ModelSpec.of(__name__, "BERT-Mini-style post-LN encoder (4 layers, hidden 256, 4 heads, FFN 1024) on 128 "
                    "generated token vectors (128x256, 9 classes), seeded weights",
                    keras_layout="same", train=TrainConfig(epochs=1, batch_size=32), calibration_samples=128,
                    tier="phone", weights="calibrated", build_cost_s=195)

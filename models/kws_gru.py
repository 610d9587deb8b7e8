"""Recurrent keyword spotter: GRU over the MFCC frames of `ds_cnn_kws`'s data, then dense logits.

Input (N, 49, 10) (time, features) in both frameworks (layout "same"). Frame stacking (low frame rate,
as on-device speech models do): the first frame dropped, every 3 consecutive 10-coefficient frames
concatenated -> 16 steps of 30 features (60 ms hop). GRU(64) -> last hidden state -> Linear(64 -> 10).

Why 16 steps, not 49: every exporter unrolls the recurrence, and ExecuTorch leaves each step's
`split_with_sizes`/`squeeze` outside XNNPACK, so a step is its own delegated subgraph, preprocessed on
its own (~1 s each): lowering time is linear in the steps (XNNPACK fp32, measured on this 2-core
machine: 53.5 s at 49 steps, 25.9 s at 24, 11.2 s at 12). At 49 steps this one 15k-parameter model
took 311 of the zoo's 673 export worker-seconds. The finding (one subgraph per step) stays visible.

Twin parity notes:
- torch nn.GRU(batch_first=True) == Keras GRU(reset_after=True) (the reset gate is applied after the
  recurrent matmul, with separate input and recurrent biases); gate order r,z,n vs z,r,h is handled
  in `models/transfer.py`. Activations tanh / sigmoid (not hard sigmoid) in both.
- the Keras GRU is unrolled (`unroll=True`): 16 static steps of plain ops instead of a while loop,
  which every converter handles (TFLite int8 included); torch.export unrolls nn.GRU anyway.
"""
from __future__ import annotations

from models.data_audio import KWS_CLASSES, make_kws_dataset
from models.spec import Dataset, ModelSpec, TrainConfig

INPUT = (49, 10)
STACK = 3                               # frames per GRU step
STEPS = (INPUT[0] - 1) // STACK         # 16: the first frame is dropped so 48 frames stack evenly
NUM_CLASSES = len(KWS_CLASSES)
HIDDEN = 64


def load_data(seed: int) -> Dataset:
    return Dataset(*make_kws_dataset(seed, n_train=3000, n_test=600))


def build_torch():
    import torch.nn as nn

    class KwsGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(INPUT[1] * STACK, HIDDEN, batch_first=True)
            self.fc = nn.Linear(HIDDEN, NUM_CLASSES)

        def forward(self, x):
            x = x[:, INPUT[0] - STEPS * STACK:].reshape(x.shape[0], STEPS, STACK * INPUT[1])
            out, _ = self.gru(x)
            return self.fc(out[:, -1])

    return KwsGRU()


def build_keras():
    import keras
    from keras import layers

    inp = keras.Input(INPUT, batch_size=1, name="input")
    x = layers.Cropping1D((INPUT[0] - STEPS * STACK, 0), name="drop_first")(inp)
    x = layers.Reshape((STEPS, STACK * INPUT[1]), name="stack")(x)
    x = layers.GRU(HIDDEN, reset_after=True, unroll=True, name="gru")(x)
    out = layers.Dense(NUM_CLASSES, name="fc")(x)
    return keras.Model(inp, out, name="kws_gru")


SPEC = ModelSpec.of(__name__, "GRU(64) keyword spotter over generated audio MFCC sequences (49x10, stacked to "
                    "16 steps of 3 frames, 10 classes)",
                    keras_layout="same", train=TrainConfig(epochs=7, batch_size=64, lr=5e-3), build_cost_s=160)

"""Dense autoencoder for machine-sound anomaly detection (MLPerf Tiny ToyADMOS style, shortened).

640 -> 128 -> 128 -> 8 -> 128 -> 128 -> 640: each hidden layer Linear + BatchNorm + ReLU, the output
Linear only (the reconstruction). MLPerf's model has four 128-unit layers on each side; two keep it
quick. Data: `models/data_audio.py` machine sounds, 5 log-mel frames x 128 bands = 640 features;
training on normal clips only (3000), test 400 normal + 100 anomalous with y = 0 normal / 1 anomaly
(labels are for anomaly scoring; the pipeline's metric is the reconstruction MSE).
Input (N, 640) in both frameworks (layout "same").

Twin parity: BatchNorm1d / BatchNormalization on (N, 128) with eps 1e-3 in both (Keras momentum 0.9 =
torch momentum 0.1).
"""
from __future__ import annotations

from models.data_audio import MACHINE_FRAMES, MACHINE_MELS, make_machine_dataset
from models.spec import Dataset, ModelSpec, TrainConfig

FEATURES = MACHINE_FRAMES * MACHINE_MELS  # 640
HIDDEN = (128, 128, 8, 128, 128)
BN_EPS = 1e-3
BN_MOMENTUM_KERAS = 0.9


def load_data(seed: int) -> Dataset:
    return Dataset(*make_machine_dataset(seed, n_train=3000, n_test_normal=400, n_test_anomalous=100))


def build_torch():
    import torch.nn as nn

    class Dense(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.fc = nn.Linear(cin, cout)
            self.bn = nn.BatchNorm1d(cout, eps=BN_EPS)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.bn(self.fc(x)))

    class AnomalyAE(nn.Module):
        def __init__(self):
            super().__init__()
            dims = (FEATURES,) + HIDDEN
            self.layers = nn.ModuleList(Dense(a, b) for a, b in zip(dims[:-1], dims[1:]))
            self.out = nn.Linear(HIDDEN[-1], FEATURES)

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return self.out(x)

    return AnomalyAE()


def build_keras():
    import keras
    from keras import layers

    inp = keras.Input((FEATURES,), batch_size=1, name="input")
    x = inp
    for i, units in enumerate(HIDDEN):
        x = layers.Dense(units, name=f"layers_{i}_fc")(x)
        x = layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM_KERAS, name=f"layers_{i}_bn")(x)
        x = layers.ReLU()(x)
    out = layers.Dense(FEATURES, name="out")(x)
    return keras.Model(inp, out, name="anomaly_ae")


SPEC = ModelSpec.of(__name__, "dense autoencoder 640-128-128-8-128-128-640 (BN+ReLU) on generated machine-sound "
                    "log-mel frames (reconstruction; anomalies in the test set)",
                    task="reconstruction", input_shape=(FEATURES,), num_outputs=FEATURES, keras_layout="same",
                    train=TrainConfig(epochs=20, batch_size=64, lr=1e-3), build_cost_s=50)

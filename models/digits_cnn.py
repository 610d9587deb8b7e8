"""Small image classifier on scikit-learn's handwritten digits (8x8, 10 classes, shipped with the package).

conv-bn-relu x2 -> maxpool -> conv-bn-relu -> global average pool -> dense. Global pooling (not
flatten) keeps NCHW/NHWC flatten order out of the weight transfer.
"""
from __future__ import annotations

import numpy as np

from models.spec import Dataset, ModelSpec, TrainConfig

CHANNELS = (16, 32, 48)
BN_EPS = 1e-3  # Keras' default; torch's BatchNorm is told the same so the twins compute one function


def load_data(seed: int) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]  # N,1,8,8 in [0,1]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return Dataset(x_tr, y_tr, x_te, y_te)


def build_torch():
    import torch.nn as nn

    class DigitsCNN(nn.Module):
        def __init__(self):
            super().__init__()
            c1, c2, c3 = CHANNELS
            self.conv1 = nn.Conv2d(1, c1, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c1, eps=BN_EPS)
            self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c2, eps=BN_EPS)
            self.pool = nn.MaxPool2d(2)
            self.conv3 = nn.Conv2d(c2, c3, 3, padding=1, bias=False)
            self.bn3 = nn.BatchNorm2d(c3, eps=BN_EPS)
            self.relu = nn.ReLU()
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(c3, 10)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.pool(self.relu(self.bn2(self.conv2(x))))
            x = self.relu(self.bn3(self.conv3(x)))
            # adaptive pool to 1 (not mean(dim)) so XNNPACK takes the pooling too
            return self.fc(self.gap(x).flatten(1))

    return DigitsCNN()


def build_keras():
    import keras
    from keras import layers

    c1, c2, c3 = CHANNELS
    inp = keras.Input((8, 8, 1), batch_size=1, name="input")
    x = layers.Conv2D(c1, 3, padding="same", use_bias=False, name="conv1")(inp)
    x = layers.ReLU()(layers.BatchNormalization(epsilon=BN_EPS, name="bn1")(x))
    x = layers.Conv2D(c2, 3, padding="same", use_bias=False, name="conv2")(x)
    x = layers.ReLU()(layers.BatchNormalization(epsilon=BN_EPS, name="bn2")(x))
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(c3, 3, padding="same", use_bias=False, name="conv3")(x)
    x = layers.ReLU()(layers.BatchNormalization(epsilon=BN_EPS, name="bn3")(x))
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(10, name="fc")(x)
    return keras.Model(inp, out, name="digits_cnn")


SPEC = ModelSpec.of(__name__, "conv-bn-relu image classifier on scikit-learn digits (8x8x1, 10 classes)",
                    input_shape=(1, 8, 8), num_outputs=10, keras_layout="nhwc",
                    train=TrainConfig(epochs=12, batch_size=32, lr=3e-3), build_cost_s=40)

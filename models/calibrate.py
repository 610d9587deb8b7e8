"""Calibrated weights: a seeded model whose BatchNorm statistics are re-estimated on generated inputs.

Phone-size models do not train on 2 cores in the export budget. A freshly initialised network has
running statistics (mean 0, var 1) that match nothing it computes, so its activations drift in scale
from layer to layer and an int8 calibration sees ranges no trained model has. Re-estimating the
statistics on the model's own (generated) inputs, as after training, gives every BN layer the
normalisation it would have: the exported graphs, sizes, latencies and quantization ranges are
representative, while accuracy is not (`ModelSpec.weights == "calibrated"`).

Both frameworks use a cumulative average over the batches, each batch weighing alike (torch
momentum=None, the same for Keras by setting its momentum to k/(k+1) at batch k), so the result does
not depend on a momentum setting.
"""
from __future__ import annotations

import numpy as np


def bn_torch(model, x: np.ndarray, batch_size: int):
    """Re-estimate every BatchNorm's running stats of a torch model on `x` (PyTorch layout); -> eval model."""
    import torch
    from torch.optim.swa_utils import update_bn
    batches = [torch.from_numpy(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    with torch.no_grad():
        update_bn(batches, model)   # resets the stats, cumulative average, restores each momentum
    return model.eval()


def bn_keras(model, x: np.ndarray, batch_size: int):
    """The same for a Keras model that accepts `batch_size` samples (not the batch-1 shipped twin:
    pass a batch-free clone), `x` in the Keras layout. Forward passes in training mode only move the
    BN statistics (no optimizer step); Dropout-free models assumed, as all twins here are."""
    import keras
    bns = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in bns]
    try:
        for k, i in enumerate(range(0, len(x), batch_size)):
            for layer in bns:
                layer.momentum = k / (k + 1.0)   # moving = (k * moving + batch) / (k + 1)
            model(x[i:i + batch_size], training=True)
    finally:
        for layer, m in zip(bns, saved):
            layer.momentum = m
    return model

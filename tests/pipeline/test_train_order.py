"""The classic zoo's trainer: the Keras twin takes each epoch's batches in the PyTorch twin's order."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np


def test_epoch_orders_differ_from_epoch_to_epoch_and_repeat_per_seed():
    import models
    from models.spec import TrainConfig
    from pipeline.train import epoch_orders
    spec = dataclasses.replace(models.get("digits_cnn"), train=TrainConfig(epochs=3, seed=5))
    a, b = [p.tolist() for p in epoch_orders(spec, 40)], [p.tolist() for p in epoch_orders(spec, 40)]
    assert a == b and len(a) == 3
    assert a[0] != a[1] != a[2] and sorted(a[1]) == list(range(40))


def test_the_keras_twin_trains_on_the_torch_twins_batch_order():
    """`train_keras` ends at the weights of the same updates taken by hand in `epoch_orders`' order.
    Keras' own fit(shuffle=True) did not: under the global seed it repeated one order every epoch."""
    import keras

    import models
    from models.spec import TrainConfig
    from pipeline.train import _seed_all, _unbatched_clone, epoch_orders, train_keras
    spec = dataclasses.replace(models.get("digits_cnn"), train=TrainConfig(epochs=3, batch_size=8, lr=1e-2,
                                                                             plateau=0))
    rng = np.random.default_rng(0)
    data = SimpleNamespace(x_train=rng.standard_normal((24, *spec.input_shape)).astype(np.float32),
                           y_train=rng.integers(0, spec.num_outputs, 24))
    _seed_all(0)
    got = train_keras(spec, data, log=lambda *a: None).get_weights()

    _seed_all(0)
    model = _unbatched_clone(spec.build_keras())
    steps = 3 * 3
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(spec.train.lr, steps)),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.optimizer.build(model.trainable_variables)
    x = spec.to_keras(data.x_train)
    for perm in epoch_orders(spec, len(x)):
        perm = perm.numpy()
        for i in range(0, len(x), 8):
            model.train_on_batch(x[perm[i:i + 8]], data.y_train[perm[i:i + 8]])
    want = model.get_weights()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)

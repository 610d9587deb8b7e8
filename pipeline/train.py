"""Train a model's twins and write a self-describing checkpoint folder.

    python -m pipeline train --models digits_cnn

Writes `artifacts/<model>/train/`: `torch.pt` (state_dict, loaded with weights_only=True),
`keras.weights.h5` (Keras-native twin; none for pretrained PyTorch weights), `keras_tw.weights.h5`
(PyTorch weights transferred), `eval.npz` (test set, calibration set and every twin's reference
outputs) and `meta.json` (the cache key and the train record). A re-run with the same key reuses all of it.
`ModelSpec.weights` says how the twins get weights: trained here, "calibrated" (seeded, BN statistics
re-estimated: phone-size models that do not train on 2 cores) or "pretrained" (shipped by a package).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

import models
from models import datacache
from models.spec import ModelSpec
from pipeline import deps, fsutil, parity
from pipeline.schema import Record, time_metric

SOURCES = ("torch", "keras", "keras_tw")


def train_dir(artifacts: Path, name: str) -> Path:
    return artifacts / name / "train"


def cache_key(spec: ModelSpec) -> str:
    """This code and the model's module, with every project module they import (a model built from
    another's layers: models/layers.py, ds_cnn_kws) and the versions of the libraries they import
    (torch, tensorflow, keras, numpy: `deps.key`), and the model's training settings. The policy is
    left out (`judging=False`): the transfer check is judged when the record is read (`judged`)."""
    return fsutil.sha256_text(deps.key([Path(__file__), models.source_file(spec.name)], judging=False),
                              repr(spec.train), repr(spec.calibration_samples), repr(spec.eval_samples))


def is_fresh(spec: ModelSpec, artifacts: Path) -> bool:
    meta = train_dir(artifacts, spec.name) / "meta.json"
    if not meta.exists():
        return False
    try:
        m = json.loads(meta.read_text())
    except ValueError:
        return False
    d = train_dir(artifacts, spec.name)
    return m.get("key") == cache_key(spec) and all((d / f).exists() for f in m.get("files", []))


def _seed_all(seed: int) -> None:
    import random

    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    keras.utils.set_random_seed(seed)


def _loss_torch(spec: ModelSpec):
    import torch.nn as nn
    return nn.CrossEntropyLoss() if spec.task == "classification" else nn.MSELoss()


def tensorboard_dir(artifacts: Path, name: str, framework: str) -> Path:
    """Training curves: `<artifacts>/../runs/<model>/<pytorch|tensorflow>` (open with `tensorboard --logdir runs`)."""
    return Path(artifacts).resolve().parent / "runs" / name / framework


def _curve_writer(tb_dir: Path | None):
    """The TensorBoard writer of one twin's curve (torch's, for both frameworks: Keras' TensorBoard
    callback cost ~1.4 s a model for the same scalar), or None."""
    if tb_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(tb_dir))


def _end_epoch(spec: ModelSpec, framework: str, losses: list[float], writer, log) -> bool:
    """After an epoch whose mean training loss is `losses[-1]`, in either framework: log it, write it
    (tag `epoch_loss` in both, so the two curves overlay), and say whether training stops there
    (`TrainConfig.plateaued`)."""
    cfg, n = spec.train, len(losses)
    log(f"  [{spec.name}] {framework} epoch {n}/{cfg.epochs} loss {losses[-1]:.4f}")
    if writer:
        writer.add_scalar("epoch_loss", losses[-1], n - 1)
    if not cfg.plateaued(losses):
        return False
    log(f"  [{spec.name}] {framework}: loss plateaued, stopping after epoch {n}")
    return True


def epoch_orders(spec: ModelSpec, n: int):
    """Each epoch's order of the `n` training samples (a seeded torch.randperm per epoch), the same for
    both twins. Not Keras' fit(shuffle=True): with the global seed set (`_seed_all`, as every training
    here) its TensorFlow data adapter draws the same permutation in every epoch (its
    `tf.random.shuffle` restarts with each epoch's iterator), so the Keras twin saw one batch order
    in every epoch where the PyTorch twin saw a new one each time."""
    import torch
    gen = torch.Generator().manual_seed(spec.train.seed)
    for _ in range(spec.train.epochs):
        yield torch.randperm(n, generator=gen)


def fit_epochs(model, spec: ModelSpec, x: np.ndarray, y: np.ndarray, losses: list, writer, log) -> None:
    """A compiled Keras model trained one `fit` per epoch in `epoch_orders`' order (the PyTorch twin's),
    each epoch's loss appended to `losses`, until `_end_epoch` says stop: both Keras trainers' loop."""
    for perm in epoch_orders(spec, len(x)):
        perm = perm.numpy()
        hist = model.fit(x[perm], y[perm], batch_size=spec.train.batch_size, epochs=1, shuffle=False, verbose=0)
        losses.append(float(hist.history["loss"][-1]))
        if _end_epoch(spec, "keras", losses, writer, log):
            break


def train_torch(spec: ModelSpec, data, log=print, tb_dir: Path | None = None, losses: list | None = None):
    """`losses`: the list each epoch's mean training loss is appended to (how many epochs ran)."""
    import torch
    cfg = spec.train
    model = spec.build_torch()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    loss_fn = _loss_torch(spec)
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train if spec.task == "classification" else data.x_train.reshape(len(data.x_train), -1))
    if x.ndim == 4:
        # oneDNN's channels-last convolutions train ~25% faster on this CPU (mobilenet_v2, 1 thread);
        # the saved weights are the same tensors, and every export reloads them into a fresh model
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    writer = _curve_writer(tb_dir)
    losses = [] if losses is None else losses
    for perm in epoch_orders(spec, len(x)):
        model.train()
        total = 0.0
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            opt.zero_grad()
            out = model(x[idx])
            loss = loss_fn(out, y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        losses.append(total / len(x))
        if _end_epoch(spec, "torch", losses, writer, log):
            break
    if writer:
        writer.close()
    return model.eval()


def train_keras(spec: ModelSpec, data, log=print, tb_dir: Path | None = None, losses: list | None = None):
    """`losses` as `train_torch`'s."""
    import keras
    cfg = spec.train
    model = spec.build_keras()
    steps = cfg.epochs * int(np.ceil(len(data.x_train) / cfg.batch_size))
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(cfg.lr, steps))
    if spec.task == "classification":
        model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        y = data.y_train
    else:
        model.compile(opt, "mse")
        y = data.x_train.reshape(len(data.x_train), -1)

    losses = [] if losses is None else losses
    writer = _curve_writer(tb_dir / "train" if tb_dir else None)   # `train/`, where Keras' callback wrote

    # the Keras twins are built with batch size 1 (what ships); train a batch-free copy, same layers
    trainable = _unbatched_clone(model)
    trainable.compile(model.optimizer, model.loss)
    # the optimizer's slots (Adam's moments: zeros) made eagerly, not inside fit's first traced step,
    # where each variable is lifted out of the graph one by one: the first epoch took 9.8 s -> 4.4 s
    # on tiny_transformer (78 variables), and the slots start at the same zeros either way
    trainable.optimizer.build(trainable.trainable_variables)
    fit_epochs(trainable, spec, spec.to_keras(data.x_train), y, losses, writer, log)
    if writer:
        writer.close()
    model.set_weights(trainable.get_weights())
    return model


def fit_torch(spec: ModelSpec, data, log=print, tb_dir: Path | None = None, losses: list | None = None):
    """The PyTorch twin as `spec.weights` says: trained (each epoch's loss appended to `losses`),
    calibrated (seeded + BN statistics re-estimated on the training inputs, `models/calibrate.py`) or
    pretrained (`build_torch` loads the weights)."""
    if spec.weights == "trained":
        return train_torch(spec, data, log, tb_dir, losses)
    model = spec.build_torch()
    if spec.weights == "calibrated":
        from models.calibrate import bn_torch
        bn_torch(model, data.x_train, spec.train.batch_size)
        log(f"  [{spec.name}] torch BN statistics re-estimated on {len(data.x_train)} inputs")
    return model.eval()


def fit_keras(spec: ModelSpec, data, log=print, tb_dir: Path | None = None, losses: list | None = None):
    """The native Keras twin likewise; None for pretrained models (PyTorch weights only: keras_tw)."""
    if spec.weights == "trained":
        return train_keras(spec, data, log, tb_dir, losses)
    if spec.weights == "pretrained":
        return None
    from models.calibrate import bn_keras
    model = spec.build_keras()
    clone = _unbatched_clone(model)   # the shipped twin takes batch 1; calibrate a batch-free copy
    clone.set_weights(model.get_weights())
    bn_keras(clone, spec.to_keras(data.x_train), spec.train.batch_size)
    model.set_weights(clone.get_weights())
    log(f"  [{spec.name}] keras BN statistics re-estimated on {len(data.x_train)} inputs")
    return model


def _unbatched_clone(model):
    import keras
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            cfg = layer["config"]
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            key = "batch_shape" if "batch_shape" in cfg else "batch_input_shape"
            cfg[key] = [None] + list(shape[1:])
    return keras.Model.from_config(config)


def predict_torch(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    import torch
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i:i + batch])).numpy()
                               for i in range(0, len(x), batch)])


def predict_keras(model, spec: ModelSpec, x: np.ndarray) -> np.ndarray:
    # the shipped twin has batch size 1; predict through a batch-free clone with the same weights
    clone = _unbatched_clone(model)
    clone.set_weights(model.get_weights())
    return np.asarray(clone.predict(spec.to_keras(x), batch_size=256, verbose=0))


def quality(spec: ModelSpec, out: np.ndarray, data) -> dict[str, float]:
    if spec.task == "classification":
        return {"accuracy": float((out.argmax(-1) == data.y_test).mean())}
    if spec.task != "reconstruction":
        return {}   # detection heads on generated inputs: parity only, nothing to score
    err = ((out - data.x_test.reshape(len(data.x_test), -1)) ** 2).mean(-1)
    return {"reconstruction_mse": float(err.mean())}


def train(spec: ModelSpec, artifacts: Path, force: bool = False, log=print) -> Record:
    """Train both twins, transfer weights, save everything; reuse a fresh cache unless `force`."""
    d = train_dir(artifacts, spec.name)
    if not force and is_fresh(spec, artifacts):
        log(f"[train] {spec.name}: up to date, reusing {d}")
        return judged(Record.from_dict(json.loads((d / "meta.json").read_text())["record"]))
    import torch
    # parallel export workers share the cores: each trains on its share, never oversubscribed
    # (an OpenMP barrier waiting on a descheduled thread makes training many times slower)
    threads = int(os.environ.get("MOBILEBENCH_THREADS", os.cpu_count() or 1))
    threads = min(threads, spec.train.threads or threads)   # a small model trains faster on fewer
    torch.set_num_threads(threads)
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow was already initialised in this process; it keeps its pools
    if spec.task == "generation":   # token windows, perplexity, a Hugging Face folder: its own trainer
        from pipeline.train_lm import train_lm
        return train_lm(spec, artifacts, log)
    t0 = time.perf_counter()
    times: dict[str, float] = {}   # phase -> seconds: the record's time_<phase>_s metrics

    def timed(phase, fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        times[phase] = time.perf_counter() - t
        return out
    _seed_all(spec.train.seed)
    with datacache.using(Path(artifacts) / ".data-cache"):   # models on one dataset make it once
        data = timed("data", spec.load_data, spec.train.seed)
    log(f"[train] {spec.name}: {len(data.x_train)} train / {len(data.x_test)} test samples")
    for fw in ("pytorch", "tensorflow"):  # a retrain replaces the old curves instead of overlaying them
        shutil.rmtree(tensorboard_dir(artifacts, spec.name, fw), ignore_errors=True)
    curves = {"torch": [], "keras": []}   # each twin's per-epoch losses: how many epochs it trained
    tmodel = timed("train_torch", fit_torch, spec, data, log, tensorboard_dir(artifacts, spec.name, "pytorch"),
                   curves["torch"])
    _seed_all(spec.train.seed)
    kmodel = timed("train_keras", fit_keras, spec, data, log, tensorboard_dir(artifacts, spec.name, "tensorflow"),
                   curves["keras"])
    ktw = spec.build_keras()
    transferred = timed("transfer", spec.transfer, tmodel, ktw)

    n_eval = spec.eval_samples or len(data.x_test)
    x_eval = data.x_test[:n_eval]
    t = time.perf_counter()
    refs = {"torch": predict_torch(tmodel, x_eval), "keras_tw": predict_keras(ktw, spec, x_eval)}
    if kmodel is not None:
        refs["keras"] = predict_keras(kmodel, spec, x_eval)
    times["eval"] = time.perf_counter() - t   # the reference outputs every export is checked against
    transfer_diff = float(np.abs(refs["keras_tw"] - refs["torch"]).max())
    rng = np.random.default_rng(spec.train.seed)
    calib_idx = np.sort(rng.choice(len(data.x_train), min(spec.calibration_samples, len(data.x_train)),
                                   replace=False))
    metrics = {"train_seconds": time.perf_counter() - t0, **{time_metric(k): v for k, v in times.items()},
               "transfer_max_abs_diff": transfer_diff,
               "train_samples": len(data.x_train), "test_samples": n_eval,
               **{f"epochs_{k}": float(len(c)) for k, c in curves.items() if c},
               "params": float(sum(p.numel() for p in tmodel.parameters()))}
    sub = type(data)(data.x_train, data.y_train, x_eval, data.y_test[:n_eval])
    for src, out in refs.items():
        for k, v in quality(spec, out, sub).items():
            metrics[f"{src}_{k}"] = v
    rec = judged(Record(kind="train", model=spec.name, status="ok", framework="both", metrics=metrics,
                               info={"transferred_layers": transferred, "calibration_indices": calib_idx.tolist(),
                                     "tier": spec.tier, "weights": spec.weights, "sources": list(spec.sources)}))

    # meta.json marks the folder fresh: drop it first, so a run killed while rewriting the files below
    # leaves a folder that is retrained, never a mix of old and new weights that looks fresh
    (d / "meta.json").unlink(missing_ok=True)
    fsutil.write_with(d / "torch.pt", lambda p: torch.save(
        {"model": spec.name, "state_dict": tmodel.state_dict(), "train": repr(spec.train)}, p))
    if kmodel is not None:
        fsutil.write_with(d / "keras.weights.h5", lambda p: kmodel.save_weights(str(p)))
    fsutil.write_with(d / "keras_tw.weights.h5", lambda p: ktw.save_weights(str(p)))
    fsutil.save_npz(d / "eval.npz", x=x_eval, y=data.y_test[:n_eval], calib=data.x_train[calib_idx],
        **{f"ref_{k}": v.astype(np.float32) for k, v in refs.items()})
    fsutil.write_json_atomic(d / "meta.json", {
        "key": cache_key(spec), "record": json.loads(rec.to_json()),
        "files": ["torch.pt"] + [f"{src}.weights.h5" for src in spec.sources if src != "torch"] + ["eval.npz"]})
    log(f"[train] {spec.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return rec


def judged(rec: Record) -> Record:
    """The train record with the weight-transfer verdict of the policy (`parity.judge_transfer`), made
    whenever the record is read: a changed bound re-judges the stored training, it does not retrain."""
    try:
        tol = models.get(rec.model).tolerances
    except KeyError:          # a model no longer registered keeps the verdict it was stored with
        return rec
    miss = parity.judge_transfer(rec.metrics["transfer_max_abs_diff"], tol)
    return dataclasses.replace(rec, status="failed" if miss else "ok", error=miss)


def load_torch(spec: ModelSpec, artifacts: Path):
    if spec.task == "generation":
        from pipeline.train_lm import load_torch as load_lm
        return load_lm(spec, artifacts)
    import torch
    model = spec.build_torch()
    ckpt = torch.load(train_dir(artifacts, spec.name) / "torch.pt", weights_only=True)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def load_keras(spec: ModelSpec, artifacts: Path, source: str):
    model = spec.build_keras()
    model.load_weights(str(train_dir(artifacts, spec.name) / f"{source}.weights.h5"))
    return model


def load_eval(spec: ModelSpec, artifacts: Path) -> dict[str, np.ndarray]:
    with np.load(train_dir(artifacts, spec.name) / "eval.npz") as z:
        return {k: z[k] for k in z.files}

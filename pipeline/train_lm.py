"""Train a generative model's twins (task "generation") and write its checkpoint folder.

    python -m pipeline train --models tiny_lm

`pipeline/train.py` hands models with `spec.task == "generation"` here (same cache key, same
`meta.json` freshness rule, same train record kind). Writes `artifacts/<model>/train/`:
- `hf/`: the PyTorch twin as a Hugging Face folder (config.json, model.safetensors, generation_config.json,
  tokenizer.json, tokenizer_config.json): the checkpoint (no pickle), and what every generative export
  path starts from, as it would from a user's folder;
- `keras.weights.h5` (native Keras twin), `keras_tw.weights.h5` (the PyTorch weights transferred);
- `eval.npz`: `x` int32 [n, context] held-out windows, `y` their next tokens, `calib` [k, context]
  training windows (quantization calibration).
Both twins train on the same windows in the same batch order (`pipeline.train.epoch_orders`) with the same update
(Adam, linear warm-up then cosine to 10 %, global gradient-norm clip 1.0: `torch_updater`,
`compile_keras`; tests/pipeline/test_train_lm.py checks they agree), each judged by the one early-stop
rule (`TrainConfig.plateaued`). Quality: held-out perplexity (teacher-forced over `x`), per twin.

Each twin starts from its own seeded draw of the same distribution, and at 292 updates the draw decides
the perplexity. tiny_lm, 4 epochs in the seed-0 batch order, 1 thread (2026-12-08): PyTorch from its
init seeds 0-3 -> 34.7, 61.7, 67.2, 58.4 (mean 55.5); Keras from the Keras twin's seeds 0-3 -> 62.6,
36.4, 54.9, 65.2 (mean 54.8). Swapping only the framework moves it by < 1: PyTorch's seed-0 weights
trained by `train_keras` 34.3, the Keras twin's seed-0 weights trained by PyTorch's update 63.7. So
`torch_perplexity` 34.7 vs `keras_perplexity` 62.6 compares two draws (PyTorch's seed 0 is a good one),
not two trainers.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np

from models.spec import ModelSpec
from pipeline import fsutil
from pipeline.schema import Record, time_metric

WARMUP_UPDATES = 10
FINAL_LR = 0.1          # of the peak, at the last step
CLIP_NORM = 1.0
HF_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def lr_at(step: int, total: int) -> float:
    """The schedule both frameworks follow, as a factor of the peak lr (Keras' CosineDecay with
    warm-up: linear 0 -> 1 over WARMUP_UPDATES, then cosine 1 -> FINAL_LR)."""
    if step < WARMUP_UPDATES:
        return step / WARMUP_UPDATES
    t = min(1.0, (step - WARMUP_UPDATES) / max(1, total - WARMUP_UPDATES))
    return FINAL_LR + (1 - FINAL_LR) * 0.5 * (1 + math.cos(math.pi * t))


def steps_total(spec: ModelSpec, n: int) -> int:
    return spec.train.epochs * math.ceil(n / spec.train.batch_size)


def torch_updater(model, total: int, lr: float):
    """The PyTorch twin's update: Adam at `lr * lr_at(step, total)`, global gradient-norm clip
    CLIP_NORM, mean cross-entropy over every token. -> update(x, y) (int64 [B, T] tensors) -> loss."""
    import torch
    import torch.nn.functional as F
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, total))

    def update(x, y) -> float:
        opt.zero_grad()
        logits = model(input_ids=x, use_cache=False).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        opt.step()
        sched.step()
        return loss.item()
    update.optimizer = opt
    return update


def train_torch(spec: ModelSpec, x: np.ndarray, y: np.ndarray, log, losses: list, writer):
    import torch
    from pipeline.train import _end_epoch, epoch_orders
    cfg = spec.train
    model = spec.build_torch().train()
    update = torch_updater(model, steps_total(spec, len(x)), cfg.lr)
    xt, yt = torch.from_numpy(x).long(), torch.from_numpy(y).long()
    for perm in epoch_orders(spec, len(xt)):
        total = 0.0
        for i in range(0, len(xt), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            total += update(xt[idx], yt[idx]) * len(idx)
        losses.append(total / len(xt))
        if _end_epoch(spec, "torch", losses, writer, log):
            break
    return model.eval()


def keras_schedule(total: int, lr: float):
    """`lr * lr_at(step, total)` as Keras' CosineDecay with warm-up (the Keras twin's schedule)."""
    import keras
    return keras.optimizers.schedules.CosineDecay(0.0, total - WARMUP_UPDATES, alpha=FINAL_LR, warmup_target=lr,
                                                  warmup_steps=WARMUP_UPDATES)


def keras_adam(schedule):
    """Keras' Adam as torch's for this trainer: global gradient-norm clip CLIP_NORM, epsilon 1e-8
    (torch's default), sparse gradients made dense first. The Embedding's gradient (TensorFlow backend)
    is a tf.IndexedSlices with one row per token occurrence, and Keras squares those rows as they are,
    in the global norm and in Adam's second moment (`ops.square` keeps the slices): sum(g_i^2) where
    torch has (sum g_i)^2 per embedding row. On tiny_lm's first training batch the clipped norm was
    0.923 instead of 0.998, so every Keras gradient was clipped less than torch's.
    Left as it is: Keras adds epsilon to sqrt(v) before Adam's bias correction, torch after it (Keras'
    1e-8 acts as 1e-8 / sqrt(1 - 0.999^t): 3.2e-7 at the first update, 2e-8 at tiny_lm's last); only
    gradients near that size step differently."""
    import keras

    class Adam(keras.optimizers.Adam):
        def apply(self, grads, trainable_variables=None):
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf
                grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
            return super().apply(grads, trainable_variables)

    return Adam(schedule, epsilon=1e-8, global_clipnorm=CLIP_NORM)


def compile_keras(model, total: int, lr: float):
    """The Keras twin's update, as `torch_updater`'s: `keras_adam` at `keras_schedule`, mean
    cross-entropy over every token (`fit` / `train_on_batch` then take the same steps)."""
    import keras
    model.compile(keras_adam(keras_schedule(total, lr)), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def train_keras(spec: ModelSpec, x: np.ndarray, y: np.ndarray, log, losses: list, writer):
    from pipeline.train import fit_epochs
    model = compile_keras(spec.build_keras(), steps_total(spec, len(x)), spec.train.lr)
    model.optimizer.build(model.trainable_variables)   # slots made eagerly (see pipeline/train.py)
    fit_epochs(model, spec, x, y, losses, writer, log)   # one fit per epoch, in the PyTorch twin's order
    return model


def logits_torch(model, x: np.ndarray, batch: int = 8):
    import torch
    with torch.no_grad():
        for i in range(0, len(x), batch):
            yield model(input_ids=torch.from_numpy(x[i:i + batch]).long(), use_cache=False).logits.numpy()


def logits_keras(model, x: np.ndarray, batch: int = 8):
    for i in range(0, len(x), batch):
        yield np.asarray(model(x[i:i + batch], training=False))


def nll(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-token negative log-likelihood (float64) of targets `y` under `logits` [..., vocab]."""
    z = logits.astype(np.float64)
    z -= z.max(-1, keepdims=True)
    lse = np.log(np.exp(z).sum(-1))
    return lse - np.take_along_axis(z, y[..., None].astype(np.int64), -1)[..., 0]


def perplexity(batches, y: np.ndarray, batch: int = 8) -> float:
    """exp(mean NLL) over every target token, from logits batches in `y`'s order."""
    total, n = 0.0, 0
    for i, logits in enumerate(batches):
        t = y[i * batch:i * batch + len(logits)]
        total += float(nll(logits, t).sum())
        n += t.size
    return float(math.exp(total / n))


def _hf_folder(dest: Path, model, tok, lm) -> None:
    """The PyTorch twin + its tokenizer as a Hugging Face folder (safetensors: no pickle)."""
    from models.lm_hf import transformers
    tf = transformers()
    model.generation_config = tf.GenerationConfig(bos_token_id=lm.bos_id, eos_token_id=lm.eos_id,
                                                  pad_token_id=lm.pad_id, max_length=lm.context)
    model.save_pretrained(str(dest), safe_serialization=True)
    from models.lm_text import SPECIALS
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=SPECIALS[0], bos_token=SPECIALS[1],
                                      eos_token=SPECIALS[2], model_max_length=lm.context)
    fast.save_pretrained(str(dest))


def train_lm(spec: ModelSpec, artifacts: Path, log=print) -> Record:
    """Train (or, weights "calibrated", seed) both twins, transfer, evaluate, save (atomically per file,
    `meta.json` last). The caller (`pipeline.train.train`) checked freshness and set the threads."""
    from pipeline.train import _curve_writer, _seed_all, cache_key, tensorboard_dir, train_dir
    lm, cfg = spec.lm, spec.train
    d = train_dir(artifacts, spec.name)
    t0 = time.perf_counter()
    times: dict[str, float] = {}
    _seed_all(cfg.seed)
    t = time.perf_counter()
    data = spec.load_data(cfg.seed)
    times["data"] = time.perf_counter() - t
    x, y = data.train[:, :-1], data.train[:, 1:]
    n_eval = spec.eval_samples or len(data.test)
    xe, ye = data.test[:n_eval, :-1], data.test[:n_eval, 1:]
    log(f"[train] {spec.name}: {len(x)} train / {len(xe)} held-out windows of {lm.context} tokens "
        f"(vocab {lm.vocab}, {lm.params() / 1e6:.2f}M parameters)")
    curves: dict[str, list] = {"torch": [], "keras": []}
    models_: dict = {}
    for src, fn in (("torch", train_torch), ("keras", train_keras)):
        fw = "pytorch" if src == "torch" else "tensorflow"
        shutil.rmtree(tensorboard_dir(artifacts, spec.name, fw), ignore_errors=True)
        _seed_all(cfg.seed)
        t = time.perf_counter()
        if spec.weights == "trained":
            writer = _curve_writer(tensorboard_dir(artifacts, spec.name, fw))
            models_[src] = fn(spec, x, y, log, curves[src], writer)
            if writer:
                writer.close()
        else:   # calibrated = seeded: nothing to re-estimate (RMSNorm has no running statistics)
            models_[src] = spec.build_torch() if src == "torch" else spec.build_keras()
        times[f"train_{src}"] = time.perf_counter() - t
    tmodel, kmodel = models_["torch"], models_["keras"]
    ktw = spec.build_keras()
    t = time.perf_counter()
    transferred = spec.transfer(tmodel, ktw)
    times["transfer"] = time.perf_counter() - t

    t = time.perf_counter()
    ppl = {"torch": perplexity(logits_torch(tmodel, xe), ye), "keras": perplexity(logits_keras(kmodel, xe), ye),
           "keras_tw": perplexity(logits_keras(ktw, xe), ye)}
    probe = xe[:4]
    transfer_diff = max(float(np.abs(a - b).max()) for a, b in zip(logits_torch(tmodel, probe),
                                                                   logits_keras(ktw, probe)))
    times["eval"] = time.perf_counter() - t
    rng = np.random.default_rng(cfg.seed)
    calib_idx = np.sort(rng.choice(len(x), min(spec.calibration_samples, len(x)), replace=False))
    from models.lm_text import TEXT, text_sha256
    metrics = {"train_seconds": time.perf_counter() - t0, **{time_metric(k): v for k, v in times.items()},
               "transfer_max_abs_diff": transfer_diff, "train_samples": len(x), "test_samples": len(xe),
               "train_tokens": float(x.size), "test_tokens": float(ye.size),
               **{f"epochs_{k}": float(len(c)) for k, c in curves.items() if c},
               **{f"{k}_perplexity": v for k, v in ppl.items()},
               "params": float(sum(p.numel() for p in tmodel.parameters()))}
    tol = spec.tolerances.transfer_atol
    status = "ok" if transfer_diff <= tol else "failed"
    rec = Record(kind="train", model=spec.name, status=status, framework="both", metrics=metrics,
                 error="" if status == "ok" else f"weight transfer max abs diff {transfer_diff:.3g} > {tol}",
                 info={"transferred_layers": transferred, "calibration_indices": calib_idx.tolist(),
                       "tier": spec.tier, "weights": spec.weights, "sources": list(spec.sources),
                       "lm": lm.to_dict(), "text": TEXT, "text_sha256": text_sha256(),
                       "tokenizer_sha256": fsutil.sha256_text(data.tokenizer.to_str())})

    (d / "meta.json").unlink(missing_ok=True)   # not fresh until every file below is rewritten
    with fsutil.atomic_path(d / "hf") as tmp:
        _hf_folder(tmp, tmodel, data.tokenizer, lm)
    fsutil.write_with(d / "keras.weights.h5", lambda p: kmodel.save_weights(str(p)))
    fsutil.write_with(d / "keras_tw.weights.h5", lambda p: ktw.save_weights(str(p)))
    fsutil.save_npz(d / "eval.npz", x=xe, y=ye, calib=x[calib_idx])
    fsutil.write_json_atomic(d / "meta.json", {
        "key": cache_key(spec), "record": json.loads(rec.to_json()),
        "files": [f"hf/{f}" for f in HF_FILES] + ["keras.weights.h5", "keras_tw.weights.h5", "eval.npz"]})
    log(f"[train] {spec.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return rec


def hf_dir(artifacts: Path, name: str) -> Path:
    from pipeline.train import train_dir
    return train_dir(artifacts, name) / "hf"


def load_torch(spec: ModelSpec, artifacts: Path):
    """The trained PyTorch twin, from its Hugging Face folder (safetensors)."""
    from models.lm_hf import transformers
    return transformers().LlamaForCausalLM.from_pretrained(str(hf_dir(artifacts, spec.name))).eval()

"""Generated audio and its features, numpy only (no downloads, no audio libraries).

Two families:
- keyword spotting: 1 s "keywords" at 16 kHz (tones, chirps, two-tone, noise bursts, buzz, tremolo,
  silence) with random onset (time shift), duration, pitch jitter, gain and background noise at a
  random SNR -> MLPerf-Tiny-style MFCC, 49 frames x 10 coefficients (40 ms window, 20 ms hop,
  40 mel bands 20-4000 Hz), standardised with the training set's per-coefficient mean/std.
- machine sounds (anomaly detection): a rotating machine (harmonics of a jittered f0, broadband noise,
  slow amplitude modulation); anomalies add a bearing-fault tone, impacts (clicks) or a detuned f0.
  Features: 5 consecutive log-mel frames x 128 bands = 640 (as MLPerf Tiny's ToyADMOS model),
  standardised with the (normal-only) training set's per-feature mean/std.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from models.datacache import cached

SR = 16000

KWS_CLASSES = ("low_tone", "high_tone", "up_chirp", "down_chirp", "low_high", "high_low",
               "noise_burst", "buzz", "tremolo", "silence")


def mel_filterbank(n_mels: int, n_fft: int, sr: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangular HTK-mel filters."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fb = np.zeros((len(freqs), n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m:m + 3]
        fb[:, m] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    return fb


def log_mel(audio: np.ndarray, win: int, hop: int, n_fft: int, n_mels: int, fmin: float,
            fmax: float) -> np.ndarray:
    """(N, samples) -> (N, frames, n_mels) log mel energies."""
    n_frames = 1 + (audio.shape[1] - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = audio[:, idx] * np.hanning(win)
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=-1)) ** 2
    mel = power.reshape(-1, power.shape[-1]) @ mel_filterbank(n_mels, n_fft, SR, fmin, fmax)  # 2-D: BLAS
    return np.log(mel.reshape(len(audio), n_frames, n_mels) + 1e-6)


def mfcc(audio: np.ndarray, n_mfcc: int = 10) -> np.ndarray:
    """(N, 16000) -> (N, 49, n_mfcc): 40 ms / 20 ms frames, 40 mel bands, DCT-II (orthonormal)."""
    n_mels = 40
    lm = log_mel(audio, win=640, hop=320, n_fft=1024, n_mels=n_mels, fmin=20.0, fmax=4000.0)
    k = np.arange(n_mfcc)[:, None]
    n = np.arange(n_mels)[None, :]
    dct = np.cos(np.pi / n_mels * (n + 0.5) * k) * np.sqrt(2.0 / n_mels)
    dct[0] /= np.sqrt(2.0)
    return (lm.reshape(-1, n_mels) @ dct.T).reshape(*lm.shape[:2], n_mfcc)


def _tone(freq, n, sr=SR):
    """freq: scalar or per-sample array (for chirps): phase is the running sum."""
    f = np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))
    return np.sin(2 * np.pi * np.cumsum(f) / sr)


def make_keyword(cls: int, rng: np.random.Generator) -> np.ndarray:
    n = SR
    dur = int(rng.uniform(0.35, 0.7) * SR)
    start = int(rng.integers(0, n - dur))
    j = rng.uniform(0.85, 1.15)  # pitch jitter
    t = np.arange(dur) / SR
    name = KWS_CLASSES[cls]
    if name == "low_tone":
        sig = _tone(400 * j, dur)
    elif name == "high_tone":
        sig = _tone(2000 * j, dur)
    elif name == "up_chirp":
        sig = _tone(np.linspace(300, 2500, dur) * j, dur)
    elif name == "down_chirp":
        sig = _tone(np.linspace(2500, 300, dur) * j, dur)
    elif name in ("low_high", "high_low"):
        lo, hi = 500 * j, 1800 * j
        a, b = (lo, hi) if name == "low_high" else (hi, lo)
        sig = _tone(np.where(np.arange(dur) < dur // 2, a, b), dur)
    elif name == "noise_burst":
        sig = rng.normal(0, 0.6, dur)
    elif name == "buzz":
        f0 = 180 * j
        sig = sum(_tone(f0 * h, dur) / h for h in range(1, 12)) * 0.5
    elif name == "tremolo":
        sig = _tone(1000 * j, dur) * (0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(8, 14) * t))
    else:  # silence: background only
        sig = np.zeros(dur)
    env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)  # 20 ms attack/release
    out = np.zeros(n)
    out[start:start + dur] = sig * env * rng.uniform(0.3, 1.0)
    # background: white + brown-ish noise at a random level (SNR roughly -5 to 20 dB)
    level = 10 ** rng.uniform(-1.8, -0.6)
    bg = rng.normal(0, 1, n) + 0.05 * np.cumsum(rng.normal(0, 1, n)) / np.sqrt(np.arange(1, n + 1))
    return out + level * bg


@cached
def make_kws_dataset(seed: int, n_train: int, n_test: int):
    """-> x_train, y_train, x_test, y_test; x is (N, 49, 10) float32 standardised MFCC."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    y = np.arange(n) % len(KWS_CLASSES)
    rng.shuffle(y)
    feats = []
    for i0 in range(0, n, 250):
        audio = np.stack([make_keyword(int(c), rng) for c in y[i0:i0 + 250]])
        feats.append(mfcc(audio))
    x = np.concatenate(feats)
    mean, std = x[:n_train].mean((0, 1)), x[:n_train].std((0, 1)) + 1e-6
    x = ((x - mean) / std).astype(np.float32)
    y = y.astype(np.int64)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


MACHINE_FRAMES, MACHINE_MELS = 5, 128
ANOMALIES = ("fault_tone", "impacts", "detuned")


def make_machine_clip(rng: np.random.Generator, anomaly: str | None) -> np.ndarray:
    n = 1024 + 512 * (MACHINE_FRAMES - 1)  # exactly MACHINE_FRAMES frames of 64 ms, hop 32 ms
    t = np.arange(n) / SR
    f0 = 120.0 * rng.uniform(0.97, 1.03)
    if anomaly == "detuned":
        f0 *= rng.choice([0.8, 1.25]) * rng.uniform(0.97, 1.03)
    harm_gain = 0.6 ** np.arange(1, 9) * rng.uniform(0.8, 1.2, 8)
    sig = sum(g * np.sin(2 * np.pi * f0 * (h + 1) * t + rng.uniform(0, 2 * np.pi))
              for h, g in enumerate(harm_gain))
    sig = sig * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))
    # broadband noise with a low-pass tilt (one-pole filter)
    noise = lfilter([1.0], [1.0, -0.9], rng.normal(0, 1, n))
    sig = sig + 0.05 * noise + 0.05 * rng.normal(0, 1, n)
    if anomaly == "fault_tone":
        sig = sig + rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * rng.uniform(2500, 5000) * t)
    elif anomaly == "impacts":
        for pos in rng.integers(0, n - 200, int(rng.integers(2, 5))):
            sig[pos:pos + 200] += rng.uniform(1, 2) * rng.normal(0, 1, 200) * np.exp(-np.arange(200) / 30)
    return sig * rng.uniform(0.7, 1.3)


@cached
def make_machine_dataset(seed: int, n_train: int, n_test_normal: int, n_test_anomalous: int):
    """-> x_train (normal only), y_train (zeros), x_test, y_test (0 normal / 1 anomaly); x (N, 640)."""
    rng = np.random.default_rng(seed)
    kinds = [None] * (n_train + n_test_normal) + \
        [ANOMALIES[i % len(ANOMALIES)] for i in range(n_test_anomalous)]
    test_kinds = kinds[n_train:]
    rng.shuffle(test_kinds)
    kinds[n_train:] = test_kinds
    audio = np.stack([make_machine_clip(rng, k) for k in kinds])
    lm = log_mel(audio, win=1024, hop=512, n_fft=1024, n_mels=MACHINE_MELS, fmin=50.0, fmax=SR / 2)
    x = lm.reshape(len(kinds), -1)
    mean, std = x[:n_train].mean(0), x[:n_train].std(0) + 1e-6
    x = ((x - mean) / std).astype(np.float32)
    y = np.array([0 if k is None else 1 for k in kinds], np.int64)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]

"""Small user models of every source kind, written with the real toolchains (fixture `user_models`, imported by
the test modules), and a runner for
`python -m pipeline package` with a short bench (1 profile, few runs)."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

BENCH = ["--profiles", "big-core", "--min-runs", "5", "--min-seconds", "0", "--ci-pct", "0", "--repeats", "1"]
# two releases of the version ladder, both in the project's own venvs (the default ladder builds an
# environment per release on first use: tests/compat, `make test-slow`)
TWO_RELEASES = "tflite-runtime==2.14.0,ai-edge-litert==2.3.0"


def package(tmp: Path, *args: str, ladder: str = "none") -> int:
    from pipeline import cli
    return cli.main(["--artifacts", str(tmp / "art"), "--results", str(tmp / "results"), "package", *args,
                     "--out", str(tmp / "dist"), *BENCH, "--ladder", ladder])


def manifest(bundle: Path, platform: str) -> dict:
    return json.loads((bundle / platform / "manifest.json").read_text())


@pytest.fixture(scope="session")
def user_models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("user_models")
    import keras
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 5)).eval()
    torch.export.save(torch.export.export(net, (torch.randn(1, 3, 16, 16),)), d / "cnn.pt2")
    rng = np.random.default_rng(1)
    np.savez(d / "samples.npz", rng.standard_normal((24, 3, 16, 16)).astype(np.float32))

    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3), name="image")
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(i)
    km = keras.Model(i, keras.layers.Dense(5)(keras.layers.GlobalAveragePooling2D()(h)))
    km.save(d / "small.keras")
    km.export(str(d / "small_sm"), verbose=False)
    kx = rng.standard_normal((24, 16, 16, 3)).astype(np.float32)
    np.savez(d / "ksamples.npz", image=kx)
    np.savez(d / "keval.npz", image=kx, y=km.predict(kx, verbose=0).argmax(-1))

    (d / "factory.py").write_text(textwrap.dedent("""
        import torch

        def build():
            # unseeded on purpose: the tool calls it in two processes and must still ship ONE model
            m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                    torch.nn.Linear(4 * 14 * 14, 5))
            return m.eval(), (torch.randn(1, 3, 16, 16),)

        class DataDependent(torch.nn.Module):
            def forward(self, x):
                if x.sum() > 0:          # data-dependent control flow: torch.export refuses it
                    return x * 2
                return x - 1

        def unexportable():
            return DataDependent(), (torch.randn(1, 4),)
        """))
    return {"pt2": d / "cnn.pt2", "samples": d / "samples.npz", "keras": d / "small.keras",
            "savedmodel": d / "small_sm", "ksamples": d / "ksamples.npz", "keval": d / "keval.npz",
            "factory": d / "factory.py", "dir": d}

"""Bad input to `python -m pipeline package`: one line naming the file and what is wrong, exit 2,
nothing written; a model no path can export: exit 1, each path's error, no bundle."""
from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

from tests.package.usermodels import package, user_models  # noqa: F401 - a fixture


def one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for n in needles:
        assert n in err[0], (n, err[0])
    return err[0]


def no_bundle(tmp_path) -> None:
    assert not (tmp_path / "dist").exists() or not [p for p in (tmp_path / "dist").iterdir()]


def test_missing_source(tmp_path, capsys):
    assert package(tmp_path, str(tmp_path / "nope.pt2")) == 2
    one_error_line(capsys, "nope.pt2", "no such file")
    no_bundle(tmp_path)


def test_unknown_source_kind(tmp_path, capsys):
    (tmp_path / "model.tflite").write_bytes(b"TFL3")
    assert package(tmp_path, str(tmp_path / "model.tflite")) == 2
    one_error_line(capsys, "model.tflite", "unknown source kind", "pipeline bench")
    (tmp_path / "folder").mkdir()
    assert package(tmp_path, str(tmp_path / "folder")) == 2
    one_error_line(capsys, "folder", "not a TensorFlow SavedModel")


def test_pt2_from_another_torch_version(user_models, tmp_path, capsys):
    bad = tmp_path / "old.pt2"
    with zipfile.ZipFile(user_models["pt2"]) as src, zipfile.ZipFile(bad, "w") as dst:
        for n in src.namelist():
            data = src.read(n)
            if n.endswith("models/model.json"):
                d = json.loads(data)
                d["torch_version"] = "2.99.0"
                d["schema_version"] = {"major": 99, "minor": 0}
                data = json.dumps(d).encode()
            dst.writestr(src.getinfo(n), data)
    assert package(tmp_path, str(bad)) == 2
    import torch
    one_error_line(capsys, "old.pt2", "torch 2.99.0", f"torch {torch.__version__}")
    no_bundle(tmp_path)


def test_keras_custom_object_refused_by_safe_mode(tmp_path, capsys):
    import keras
    i = keras.Input((4,))
    m = keras.Model(i, keras.layers.Lambda(lambda x: x * 2)(i))
    m.save(tmp_path / "lam.keras")
    assert package(tmp_path, str(tmp_path / "lam.keras")) == 2
    one_error_line(capsys, "lam.keras", "safe_mode=True")
    no_bundle(tmp_path)


@pytest.mark.parametrize("case", ["count", "shape", "dtype", "empty", "zero", "not_npz"])
def test_bad_samples(case, user_models, tmp_path, capsys):
    f = tmp_path / "s.npz"
    x = np.zeros((4, 3, 16, 16), np.float32)
    if case == "count":
        np.savez(f, x, x)
    elif case == "shape":
        np.savez(f, x[:, :, :8])
    elif case == "dtype":
        np.savez(f, x.astype(np.float64))
    elif case == "empty":
        np.savez(f)
    elif case == "zero":
        np.savez(f, x[:0])
    else:
        f.write_text("not an npz")
    assert package(tmp_path, str(user_models["pt2"]), "--samples", str(f)) == 2
    want = {"count": ["2 arrays", "1 input"], "shape": ["'input'", "(4, 3, 8, 16)", "(N, 3, 16, 16)"],
            "dtype": ["'input'", "float64", "float32"], "empty": ["no arrays"], "zero": ["0 samples"],
            "not_npz": ["not a readable .npz"]}[case]
    one_error_line(capsys, "s.npz", *want)
    no_bundle(tmp_path)


@pytest.mark.slow   # ~17 s of failing exports
def test_no_path_can_export(user_models, tmp_path, capsys):
    src = f"{user_models['factory']}:unexportable"
    assert package(tmp_path, src, "--paths", "et_portable_fp32,litert_torch_fp32", "--name", "dd") == 1
    out = capsys.readouterr().out
    assert "[package] et_portable_fp32: failed:" in out and "[package] litert_torch_fp32: failed:" in out
    assert "no bundle written" in out
    assert not (tmp_path / "dist" / "dd").exists()
    assert "et_portable_fp32" in (tmp_path / "art" / "package" / "dd" / "report.html").read_text()


@pytest.mark.slow   # ~12 s; make test keeps the zoo's interrupted-run and temp-folder checks
def test_stale_temp_bundle_is_removed_and_old_bundle_kept_on_failure(user_models, tmp_path, capsys):
    """An interrupted bundle write leaves only a hidden temp folder; the next run removes it."""
    (tmp_path / "dist" / ".tmp-dd.x").mkdir(parents=True)
    src = f"{user_models['factory']}:unexportable"
    assert package(tmp_path, src, "--paths", "et_portable_fp32", "--name", "dd") == 1
    assert not (tmp_path / "dist" / ".tmp-dd.x").exists()
    shutil.rmtree(tmp_path / "dist")

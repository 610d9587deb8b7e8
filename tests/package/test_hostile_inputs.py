"""Hostile model and sample files (issue 30), crafted here from real ones (tests/hostile.py): every one is
refused with one line naming the file, exit 2, and no payload ever runs (each would create a marker file).

The pre-checks are tested in this process (fast: each case is a few ms); a few cases go through the whole
`python -m pipeline package` (sandboxed workers included) to show the exit code and the one line."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from pipeline.package import samples, sources
from tests.hostile import PT2_CASES, pt2_variant, savedmodel_with_write
from tests.package.test_package_bad_inputs import no_bundle, one_error_line
from tests.package.usermodels import package, user_models  # noqa: F401 - a fixture


@pytest.mark.parametrize("case", PT2_CASES)
def test_pt2_payloads_never_run(case, user_models, tmp_path):
    marker = tmp_path / "PWNED"
    f = pt2_variant(user_models["pt2"], tmp_path / f"{case}.pt2", case, marker)
    with pytest.raises(sources.BadInput) as e:
        sources.load(sources.detect(str(f)))
    assert str(e.value).startswith(str(f)) and "\n" not in str(e.value), e.value
    assert not marker.exists()


def test_real_pt2_still_loads(user_models):
    loaded = sources.load(sources.detect(str(user_models["pt2"])))
    assert [i.shape for i in loaded.inputs] == [(1, 3, 16, 16)]


@pytest.mark.parametrize("case", ["weights_pickle",
                                  pytest.param("sample_inputs_pickle", marks=pytest.mark.slow)])  # in-process above
def test_pt2_payload_through_package(case, user_models, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    f = pt2_variant(user_models["pt2"], tmp_path / "evil.pt2", case, marker)
    assert package(tmp_path, str(f), "--samples", str(user_models["samples"])) == 2
    one_error_line(capsys, "evil.pt2", "refused")
    assert not marker.exists()
    no_bundle(tmp_path)


@pytest.mark.parametrize("op,name", [("write", "WriteFile"), ("read", "ReadFile"), ("print", "PrintV2"),
                                     ("pyfunc", "PyFunc")])
def test_savedmodel_side_effect_ops_refused(op, name, tmp_path):
    marker = tmp_path / "PWNED"
    sm = savedmodel_with_write(tmp_path / "sm", marker, op)
    with pytest.raises(sources.BadInput, match=name) as e:
        sources.load(sources.detect(str(sm)))
    assert str(e.value).startswith(str(sm)) and "\n" not in str(e.value)
    assert not marker.exists()


def test_savedmodel_write_through_package(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    sm = savedmodel_with_write(tmp_path / "sm", marker)
    assert package(tmp_path, str(sm)) == 2
    one_error_line(capsys, str(sm), "WriteFile (file system)")
    assert not marker.exists()
    no_bundle(tmp_path)


@pytest.mark.parametrize("target", ["/etc/passwd", "huge"])
def test_savedmodel_link_out_of_the_folder(target, user_models, tmp_path, capsys):
    import shutil
    sm = tmp_path / "sm"
    shutil.copytree(user_models["savedmodel"], sm)
    if target == "huge":
        target = tmp_path / "huge.bin"
        with open(target, "wb") as f:
            f.truncate(50 * 2**30)        # sparse: 50 GB declared, nothing on disk
    (sm / "assets").mkdir(exist_ok=True)
    (sm / "assets" / "vocab.txt").symlink_to(target)
    assert package(tmp_path, str(sm)) == 2
    one_error_line(capsys, "assets/vocab.txt", "link out of the folder")
    with pytest.raises(sources.BadInput, match="vocab.txt"):
        sources.Source("savedmodel", sm).sha256()     # hashing never follows it either


def _bomb(path, shape, dtype="<f4"):
    """A deflated .npy whose header declares `shape` over 100 MB of zeros (0.1 MB on disk)."""
    import io
    import zipfile
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": dtype, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("arr_0.npy", "w", force_zip64=True) as m:
        m.write(hdr.getvalue())
        for _ in range(100):
            m.write(b"\0" * 2**20)
    return path


@pytest.mark.parametrize("case", ["bomb_25M_samples", "declares_4TB", "object_array", "nan", "inf", "random_bytes",
                                  "scalar"])
def test_bad_samples_refused_quickly(case, user_models, tmp_path, capsys):
    f = tmp_path / "s.npz"
    x = np.zeros((8, 3, 16, 16), np.float32)
    want = {"bomb_25M_samples": ["declares shape (25000000, 3, 16, 16)", "GiB"], "declares_4TB": ["GiB", "limit"],
            "object_array": ["Python objects"], "nan": ["'arr_0'", "sample 5"], "inf": ["'arr_0'", "sample 0"],
            "random_bytes": ["not a readable .npz"], "scalar": ["0-d scalar"]}[case]
    if case == "bomb_25M_samples":
        _bomb(f, (25_000_000, 3, 16, 16))
    elif case == "declares_4TB":
        _bomb(f, (2**40, 1), "<f4")
    elif case == "object_array":
        np.savez(f, np.array([{"a": 1}, None], dtype=object))
    elif case in ("nan", "inf"):
        x[5 if case == "nan" else 0, 0, 0, 0] = np.nan if case == "nan" else np.inf
        np.savez(f, x)
    elif case == "random_bytes":
        f.write_bytes(os.urandom(4096))
    else:
        np.savez(f, np.float32(1.0))
    t0 = time.perf_counter()
    assert package(tmp_path, str(user_models["pt2"]), "--samples", str(f)) == 2
    assert time.perf_counter() - t0 < 10
    line = one_error_line(capsys, "s.npz", *want)
    assert "unsafe" not in line
    no_bundle(tmp_path)


def test_first_samples_only(tmp_path):
    f = tmp_path / "many.npz"
    np.savez(f, np.arange(5000 * 4, dtype=np.float32).reshape(5000, 4))
    (a,) = samples.read(f, [sources.TensorSpec("x", (1, 4), "float32")])
    assert a.shape == (samples.MAX_SAMPLES, 4) and a[-1, -1] == samples.MAX_SAMPLES * 4 - 1


def test_nan_output_model_refused_naming_the_sample(tmp_path, capsys):
    import torch

    class Nan(torch.nn.Module):
        def forward(self, x):
            return torch.log(x)          # NaN for negative inputs

    torch.export.save(torch.export.export(Nan(), (torch.ones(1, 4),)), tmp_path / "nan.pt2")
    x = np.ones((6, 4), np.float32)
    x[3, 0] = -1.0
    np.savez(tmp_path / "s.npz", x)
    assert package(tmp_path, str(tmp_path / "nan.pt2"), "--samples", str(tmp_path / "s.npz")) == 2
    one_error_line(capsys, "NaN or Inf", "sample 3")


def test_out_that_is_a_file_is_found_first(user_models, tmp_path, capsys):
    from pipeline import cli
    (tmp_path / "dist").write_text("a file")
    t0 = time.perf_counter()
    assert cli.main(["--artifacts", str(tmp_path / "art"), "--results", str(tmp_path / "results"), "package",
                     str(user_models["pt2"]), "--out", str(tmp_path / "dist")]) == 2
    assert time.perf_counter() - t0 < 5
    one_error_line(capsys, "--out", "not a folder")


def test_bench_pickled_input_and_bad_file_exit_2_without_a_table(tmp_path, capsys):
    from pipeline import cli
    from conftest import ROOT
    np.save(tmp_path / "x.npy", np.array([object()], dtype=object), allow_pickle=True)
    tfl = ROOT / "pipeline" / "bench" / "data" / "trivial.tflite"
    args = ["--results", str(tmp_path / "r"), "bench", "--no-device", "--no-peer", "--no-op-profile"]
    assert cli.main([*args, str(tfl), "--input", f"x={tmp_path / 'x.npy'}"]) == 2
    out = capsys.readouterr()
    assert len(out.err.strip().splitlines()) == 1 and "Python objects" in out.err and "| artifact" not in out.out
    (tmp_path / "bad.tflite").write_bytes(b"\0" * 64)
    assert cli.main([*args, str(tmp_path / "bad.tflite")]) == 2
    out = capsys.readouterr()
    assert len(out.err.strip().splitlines()) == 1 and "bad.tflite" in out.err and "| artifact" not in out.out


def test_bundle_mode_follows_the_umask(tmp_path):
    from pipeline.package import bundle
    (tmp_path / "a.txt").write_text("x")
    dest = bundle.write(tmp_path / "out", "b", {"android/a.txt": tmp_path / "a.txt"}, {"README.md": "r"})
    mask = os.umask(0o022)
    os.umask(mask)
    assert dest.stat().st_mode & 0o777 == 0o777 & ~mask


def test_nan_artifact_output_has_no_sqnr():
    """An artifact whose output holds NaN: its SQNR is NaN (not the 200 dB cap), and it is not ok."""
    from pipeline import parity
    ref = [np.random.default_rng(0).random((8, 5)).astype(np.float32)]
    out = [ref[0].copy()]
    out[0][3, 2] = np.nan
    m = parity.compare(out, ref)
    assert np.isnan(m["sqnr_db"]) and parity.compare([ref[0].copy()], ref)["sqnr_db"] == 200.0
    assert parity.judge(m, "fp32", parity.DEFAULTS["fp32"]).status != "ok"


def test_bench_of_a_folder_with_a_link_out_of_it(tmp_path, capsys):
    from pipeline import cli
    pkg = tmp_path / "x.mlpackage"
    pkg.mkdir()
    (pkg / "Manifest.json").symlink_to("/etc/passwd")
    assert cli.main(["--results", str(tmp_path / "r"), "bench", str(pkg), "--no-device"]) == 2
    one_error_line(capsys, "x.mlpackage", "Manifest.json is a link out of the folder")

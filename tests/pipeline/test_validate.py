"""Bad model files get one clear line naming the file and the problem, before any runtime sees them."""
from __future__ import annotations

import os
import zipfile

import pytest

from pipeline.validate import BadModelFile, check_model_file


def _tflite_bytes():
    return (28).to_bytes(4, "little") + b"TFL3" + bytes(200)


def test_missing(tmp_path):
    with pytest.raises(BadModelFile, match=r"nope.tflite: no such file"):
        check_model_file(tmp_path / "nope.tflite")


def test_empty(tmp_path):
    f = tmp_path / "m.tflite"
    f.write_bytes(b"")
    with pytest.raises(BadModelFile, match="m.tflite: empty file"):
        check_model_file(f)


def test_random_bytes(tmp_path):
    f = tmp_path / "m.pte"
    f.write_bytes(os.urandom(300))
    with pytest.raises(BadModelFile, match="m.pte: not a ExecuTorch program|m.pte: contents are"):
        check_model_file(f)


def test_wrong_extension(tmp_path):
    f = tmp_path / "m.pte"
    f.write_bytes(_tflite_bytes())
    with pytest.raises(BadModelFile, match="contents are a tflite file but the extension says pte"):
        check_model_file(f)


def test_truncated_root_offset(tmp_path):
    f = tmp_path / "m.tflite"
    f.write_bytes((5000).to_bytes(4, "little") + b"TFL3" + bytes(40))
    with pytest.raises(BadModelFile, match="outside the file"):
        check_model_file(f)


def test_plain_zip_is_not_a_ptl(tmp_path):
    f = tmp_path / "m.ptl"
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(BadModelFile, match="without bytecode.pkl"):
        check_model_file(f)


def test_unknown_extension(tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"x" * 10)
    with pytest.raises(BadModelFile, match="unknown extension"):
        check_model_file(f)


def test_real_artifacts_pass(digits_exports):
    from conftest import ROOT
    for rec in digits_exports.values():
        if rec.status == "ok":
            assert check_model_file(ROOT / rec.artifact) == rec.format

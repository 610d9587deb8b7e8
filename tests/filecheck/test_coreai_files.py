"""Core AI .aimodel folders: a good one passes with its facts; hostile ones get one line naming the folder."""
from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from pipeline.filecheck import coreai
from pipeline.filecheck.validate import BadModelFile, check_isolated, check_model_file

TRIVIAL = coreai.Path(__file__).resolve().parents[2] / "pipeline" / "bench" / "data" / "trivial.aimodel"


@pytest.fixture
def asset(tmp_path):
    d = tmp_path / "m.aimodel"
    shutil.copytree(TRIVIAL, d)
    return d


def test_good_folder_facts(asset):
    assert check_model_file(asset) == "aimodel"
    f = coreai.inspect(asset)
    assert f["hash_ok"] and f["functions"]["main"]["inputs"] == [{"name": "input", "dtype": "float32", "shape": [1]}]
    assert f["functions"]["main"]["outputs"][0]["name"] == "output"
    assert f["compatibility_version"].startswith("27") and "iOS" in f["minimum_os"]
    assert f["operations"] and f["compressed_weight_share"] == 0.0


def _bad(asset, match):
    with pytest.raises(BadModelFile, match=match) as e:
        check_model_file(asset)
    assert str(asset) in str(e.value) and "\n" not in str(e.value)


def test_symlink_out_of_the_folder(asset, tmp_path):
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", asset / "weights.bin")
    _bad(asset, "weights.bin is a symbolic link")


def test_symlinked_bytecode(asset, tmp_path):
    shutil.move(asset / "main.mlirb", tmp_path / "elsewhere.mlirb")
    os.symlink(tmp_path / "elsewhere.mlirb", asset / "main.mlirb")
    _bad(asset, "main.mlirb is a symbolic link")


def test_missing_hash(asset):
    (asset / "main.hash").unlink()
    _bad(asset, "main.hash is missing")


def test_mismatched_hash(asset):
    b = bytearray((asset / "main.mlirb").read_bytes())
    b[-1] ^= 0xFF
    (asset / "main.mlirb").write_bytes(bytes(b))
    _bad(asset, "main.hash does not match the bytes of main.mlirb")


def test_random_bytes_with_their_own_hash(asset):
    junk = os.urandom(2000)
    (asset / "main.mlirb").write_bytes(junk)
    (asset / "main.hash").write_bytes(hashlib.sha256(junk).digest())
    _bad(asset, "main.mlirb is not MLIR bytecode")


def test_random_bytes_behind_the_magic(asset):
    """Past every stdlib check, coreai-core's reader finds no function (its runtime would abort the process
    on these bytes): still one line."""
    junk = coreai.MAGIC + os.urandom(2000)
    (asset / "main.mlirb").write_bytes(junk)
    (asset / "main.hash").write_bytes(hashlib.sha256(junk).digest())
    _bad(asset, "reads no function from the program: its bytecode does not parse")


@pytest.mark.slow
def test_isolated_check_of_a_folder(asset):
    """A stranger's folder is checked in a child process whose memory ceiling fits coreai-core's libraries."""
    assert check_isolated(asset) == "aimodel"


def test_not_a_folder_and_bad_metadata(tmp_path, asset):
    f = tmp_path / "x.aimodel"
    f.write_bytes(b"not a folder")
    _bad(f, "not a folder")
    (asset / "metadata.json").write_text("[1, 2]")
    _bad(asset, "metadata.json is not a JSON object")

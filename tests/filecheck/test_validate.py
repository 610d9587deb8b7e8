"""Bad model files get one clear line naming the file and the problem, before any runtime sees them."""
from __future__ import annotations

import os
import zipfile

import pytest

from pipeline.filecheck.validate import BadModelFile, check_model_file


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


# --- real artifacts, damaged: every format (the digits artifacts built by the conftest fixture) ---

def _real(digits_exports, fmt):
    from conftest import ROOT
    return [ROOT / r.artifact for r in digits_exports.values() if r.status == "ok" and r.format == fmt]


@pytest.mark.parametrize("fmt", ["tflite", "pte", "ptl"])
def test_truncated_at_many_offsets_is_rejected(digits_exports, tmp_path, fmt):
    """Cut a real file at 64 offsets spread over its length (plus the first bytes): all rejected."""
    src = _real(digits_exports, fmt)[0]
    data = src.read_bytes()
    cuts = sorted(set(range(0, 40)) | {len(data) * k // 64 for k in range(1, 64)} | {len(data) - 1})
    passed = []
    for cut in cuts:
        f = tmp_path / f"cut{src.suffix}"
        f.write_bytes(data[:cut])
        try:
            check_model_file(f)
            passed.append(cut)
        except BadModelFile as e:
            assert str(e).startswith(str(f) + ": ") and "\n" not in str(e), str(e)
    assert passed == [], f"{len(passed)}/{len(cuts)} truncations of {src.name} passed the check: {passed[:10]}"


@pytest.mark.parametrize("fmt,ext", [("tflite", ".pte"), ("tflite", ".ptl"), ("pte", ".tflite"),
                                     ("pte", ".ptl"), ("ptl", ".tflite"), ("ptl", ".pte")])
def test_other_format_with_wrong_extension(digits_exports, tmp_path, fmt, ext):
    f = tmp_path / f"model{ext}"
    f.write_bytes(_real(digits_exports, fmt)[0].read_bytes())
    with pytest.raises(BadModelFile, match=rf"^{f}: (contents are a|not a)"):
        check_model_file(f)


@pytest.mark.parametrize("fmt,ident", [("tflite", b"TFL9"), ("tflite", b"ET12"), ("pte", b"ETxx"),
                                       ("pte", b"TFL3")])
def test_flatbuffer_with_wrong_identifier(digits_exports, tmp_path, fmt, ident):
    data = bytearray(_real(digits_exports, fmt)[0].read_bytes())
    data[4:8] = ident
    f = tmp_path / f"m.{fmt}"
    f.write_bytes(bytes(data))
    with pytest.raises(BadModelFile, match=rf"^{f}: (not a|contents are a)"):
        check_model_file(f)


def test_tflite_bad_offsets_inside_are_rejected(digits_exports, tmp_path):
    """The flatbuffer walk (pipeline/filecheck/flatbuf.py) catches offsets the interpreter would follow."""
    data = bytearray(_real(digits_exports, "tflite")[0].read_bytes())
    root = int.from_bytes(data[:4], "little")
    vt = root - int.from_bytes(data[root:root + 4], "little", signed=True)
    subgraphs_field = root + int.from_bytes(data[vt + 8:vt + 10], "little")  # slot 2 = subgraphs
    bad = bytearray(data)
    bad[subgraphs_field:subgraphs_field + 4] = (len(data) * 2).to_bytes(4, "little")
    f = tmp_path / "m.tflite"
    f.write_bytes(bytes(bad))
    with pytest.raises(BadModelFile, match=rf"^{f}: corrupt tflite file: subgraphs .* outside the file"):
        check_model_file(f)


def test_directory_and_unreadable(tmp_path):
    d = tmp_path / "dir.tflite"
    d.mkdir()
    with pytest.raises(BadModelFile, match="dir.tflite: not a regular file"):
        check_model_file(d)
    f = tmp_path / "locked.tflite"
    f.write_bytes(_tflite_bytes())
    f.chmod(0)
    if os.access(f, os.R_OK):
        pytest.skip("running as root: permissions do not stop reads")
    with pytest.raises(BadModelFile, match="locked.tflite: not readable"):
        check_model_file(f)

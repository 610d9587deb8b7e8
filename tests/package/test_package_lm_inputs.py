"""A user's language model folder that `python -m pipeline package` refuses before any library reads it:
one line naming the file and what is wrong, exit 2, nothing run, no bundle. Pickle weights are never
opened (a payload in them would leave a marker file), custom code is never imported."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import struct

import pytest

from pipeline.filecheck import hf_lm
from pipeline.filecheck.validate import BadModelFile
from tests.package.test_package_bad_inputs import no_bundle, one_error_line
from tests.package.usermodels import package

tiny_lm = pytest.importorskip("tests.generative.tiny_lm")


class _Payload:
    """What a hostile pickle carries: unpickling it creates the marker file."""
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


@pytest.fixture
def folder(tmp_path):
    """A copy of the tests' tiny Llama folder (config.json, model.safetensors, tokenizer.json)."""
    dst = tmp_path / "my_lm"
    shutil.copytree(tiny_lm.hf_folder(seed=0), dst)
    return dst


def test_a_good_folder_passes_the_checks(folder):
    f = hf_lm.check(folder)
    assert f.architecture == "LlamaForCausalLM" and f.weights == (folder / "model.safetensors",)
    assert f.tokenizer == folder / "tokenizer.json" and not f.ignored


def test_pickle_only_weights_are_refused_and_never_opened(folder, tmp_path, capsys):
    marker = tmp_path / "payload-ran"
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    assert package(tmp_path, str(folder)) == 2
    one_error_line(capsys, "my_lm", "only pickle weights (pytorch_model.bin)", "refused", "safetensors")
    assert not marker.exists()
    no_bundle(tmp_path)


def test_pickles_beside_safetensors_are_ignored_and_named(folder, tmp_path):
    marker = tmp_path / "payload-ran"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    assert hf_lm.check(folder).ignored == ("pytorch_model.bin",)
    assert not marker.exists()


def test_custom_code_is_refused(folder, tmp_path, capsys):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilLM"}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "modeling_evil.py").write_text(f"import os\nos.makedirs({str(tmp_path / 'code-ran')!r})\n")
    assert package(tmp_path, str(folder)) == 2
    one_error_line(capsys, "config.json", "custom modelling code (auto_map)", "never run")
    assert not (tmp_path / "code-ran").exists()


@pytest.mark.parametrize("damage", ["truncated", "header_too_big", "header_not_json", "lying_shape"])
def test_a_damaged_safetensors_is_refused_naming_it(folder, tmp_path, capsys, damage):
    f = folder / "model.safetensors"
    data = f.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    if damage == "truncated":
        data = data[:len(data) // 2]
    elif damage == "header_too_big":
        data = struct.pack("<Q", 1 << 40) + data[8:]
    elif damage == "header_not_json":
        data = data[:8] + b"\xff" * n + data[8 + n:]
    else:
        name = next(k for k in header if k != "__metadata__")
        header[name]["shape"] = [d * 1000 for d in header[name]["shape"]]
        raw = json.dumps(header).encode()
        data = struct.pack("<Q", len(raw)) + raw + data[8 + n:]
    f.write_bytes(data)
    assert package(tmp_path, str(folder)) == 2
    one_error_line(capsys, "model.safetensors")
    no_bundle(tmp_path)


def test_no_tokenizer_and_a_bad_config_are_one_line_each(folder, tmp_path, capsys):
    (folder / "tokenizer.json").unlink()
    with pytest.raises(BadModelFile, match="no tokenizer.json beside config.json"):
        hf_lm.check(folder)
    (folder / "config.json").write_text("{not json")
    assert package(tmp_path, str(folder)) == 2
    one_error_line(capsys, "config.json", "not valid JSON")


def test_a_link_out_of_the_folder_is_refused(folder, tmp_path, capsys):
    outside = tmp_path / "elsewhere.safetensors"
    (folder / "model.safetensors").rename(outside)
    (folder / "model.safetensors").symlink_to(outside)
    assert package(tmp_path, str(folder)) == 2
    one_error_line(capsys, "model.safetensors is a link out of the folder")


def test_prompts_are_tokenized_in_a_sandboxed_worker_and_a_bad_tokenizer_is_one_line(folder):
    """The parent never opens tokenizer.json (a crafted pre-tokenizer regex could hang it): the worker's ids
    are the tokenizer's, and a tokenizer it cannot load is a one-line error naming the file."""
    from tokenizers import Tokenizer
    from pipeline.package import lm_tokenize
    from pipeline.package.sources import BadInput
    lines = ["def greedy(prompt):", "the cache in and out"]
    ids = lm_tokenize.encode(folder / "tokenizer.json", lines)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert [list(t) for t in ids] == [tok.encode(ln).ids for ln in lines]
    (folder / "tokenizer.json").write_text('{"version": 1}')
    with pytest.raises(BadInput, match=r"tokenizer.json: the tokenizer cannot tokenize the prompts: .*expected a string"):
        lm_tokenize.encode(folder / "tokenizer.json", lines)

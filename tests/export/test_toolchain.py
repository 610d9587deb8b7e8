"""A toolchain-level failure is probed once per version set (export/toolchain.py): the outcome is kept
and reused while the versions and the probe's code stay, and probed again when they change."""
from __future__ import annotations

from export import toolchain


def test_probe_runs_once_per_key_and_again_when_versions_change(tmp_path):
    calls = []

    def probe():
        calls.append(1)
        {}.missing   # noqa: B018 - the probe model's failure, as a toolchain would raise it

    libs, code = ("torch", "numpy"), [toolchain.__file__]
    first = toolchain.probed("t", probe, libs, code, cache=tmp_path)
    assert first == "AttributeError: 'dict' object has no attribute 'missing'" and len(calls) == 1
    assert toolchain.probed("t", probe, libs, code, cache=tmp_path) == first and len(calls) == 1
    # another version set (a library added, as an upgrade changes a version): the probe runs again
    assert toolchain.probed("t", probe, (*libs, "pytest"), code, cache=tmp_path) == first and len(calls) == 2


def test_a_toolchain_that_works_is_kept_as_working(tmp_path):
    assert toolchain.probed("ok", lambda: None, ("torch",), [toolchain.__file__], cache=tmp_path) == ""
    assert toolchain.probed("ok", lambda: 1 / 0, ("torch",), [toolchain.__file__], cache=tmp_path) == ""


def test_an_unwritable_cache_only_means_probing_again(tmp_path):
    (tmp_path / "ro").write_text("a file where the cache folder would be")
    calls = []
    for _ in range(2):
        assert toolchain.probed("t", lambda: calls.append(1), ("torch",), [], cache=tmp_path / "ro") == ""
    assert len(calls) == 2


def test_the_key_names_the_versions_installed():
    import torch
    assert f"torch=={torch.__version__}" in toolchain.versions(["torch"])
    assert toolchain.versions(["no-such-dist-here"]) == ("no-such-dist-here==none",)
    assert toolchain.key(["torch"], []) != toolchain.key(["torch", "no-such-dist-here"], [])

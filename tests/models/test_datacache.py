"""Generated data is made once per content (`models/datacache.py`): a cached call returns exactly what
the generator returns, a second call reads the file, another argument is another entry.

    .venv/bin/python -m pytest -q tests/models/test_datacache.py
"""
from __future__ import annotations

import numpy as np

from models import datacache
from models.data_tokens import make_dataset


def test_second_call_reads_what_the_first_made(tmp_path):
    fresh = make_dataset(0, 16, 8)                  # outside `using`: no cache
    with datacache.using(tmp_path):
        first = make_dataset(0, 16, 8)
        (entry,) = tmp_path.glob("make_dataset-*.npz")
        for a, b in zip(fresh, first):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        # the next call must come from the file: give the file other contents and see them returned
        np.savez(entry, **{f"a{i}": a + 1 for i, a in enumerate(first)})
        again = make_dataset(0, 16, 8)
        assert np.array_equal(again[1], first[1] + 1)
        make_dataset(1, 16, 8)
    assert len(list(tmp_path.glob("make_dataset-*.npz"))) == 2      # another seed, another entry
    assert not list(tmp_path.glob(".*")), "a temporary file was left behind"
    assert len(list(tmp_path.iterdir())) == 2 and make_dataset(0, 16, 8)[1].tolist() == fresh[1].tolist()

"""`transformers` as the generative models use it: without Hub kernels.

Two traps of transformers 5.25 with the `kernels` package (0.19.1, installed with the stack):
- `from_pretrained` kernelizes by default (`use_kernels` defaults to on unless USE_HUB_KERNELS says no),
  which may fetch kernels from the Hub: nothing may be downloaded at run time;
- litert-torch's generative exporter imports transformers' gemma3 code, whose
  `@use_kernelized_func(apply_rotary_pos_emb)` raises "Function apply_rotary_pos_emb is not decorated
  with @use_kernel_forward_from_hub" whenever `kernels` is importable.
So: USE_HUB_KERNELS=0, and transformers told `kernels` is not available, before its hub-kernel
integration is first imported (the no-op decorators it then uses are what CPU inference runs anyway).

    from models.lm_hf import transformers
    tf = transformers()          # the module, safe to use for every generative path
"""
from __future__ import annotations

import os
import sys


def transformers():
    """The `transformers` module with Hub kernels off (idempotent). Raises RuntimeError when its
    hub-kernel integration was imported before this could switch it off (an import order bug here)."""
    os.environ["USE_HUB_KERNELS"] = "0"
    hub = sys.modules.get("transformers.integrations.hub_kernels")
    if hub is not None and hasattr(hub, "_kernels_use_kernelized_func"):
        raise RuntimeError("transformers' hub kernels were enabled before models.lm_hf.transformers() ran: "
                           "call it before importing transformers' models")
    import transformers.utils as tu
    import transformers.utils.import_utils as iu

    def _unavailable(*args, **kwargs) -> bool:
        return False
    iu.is_kernels_available = _unavailable
    tu.is_kernels_available = _unavailable
    import transformers as tf
    return tf

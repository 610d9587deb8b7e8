"""What a generative (decoder-only, Llama-shaped) model is: `LMConfig`, hung off `ModelSpec.lm`.

One frozen config carries the architecture (what `LlamaConfig` and the Keras twin are built from) and
the export contract every generative path and the generation harness read: the cache length, the
prefill bounds, the special token ids. A user's Hugging Face-style folder gives one through
`LMConfig.from_hf(config_json_dict)`; the zoo models write theirs in their module.

    from models.lm_config import LMConfig
    cfg = LMConfig(vocab=1024, hidden=128, layers=2, heads=4, kv_heads=2, ffn=352, context=128)
    cfg.llama_config()      # -> transformers.LlamaConfig (imports transformers)

Imports nothing heavy at the top (the registry lists models without torch or TensorFlow).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

# the Hugging Face architectures whose config maps onto this one (RMSNorm, RoPE, GQA, SwiGLU, no biases)
HF_ARCHITECTURES = ("LlamaForCausalLM",)


@dataclass(frozen=True)
class LMConfig:
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int                       # SwiGLU inner width (gate/up/down)
    context: int                   # cache length: prompt + generated tokens an artifact holds
    head_dim: int = 0              # 0 = hidden // heads
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    # export contract: the prefill of the paths with a dynamic sequence length (ExecuTorch, ONNX)
    # takes S in [1, prefill_max]; paths with fixed prefill signatures (litert-torch, the Keras
    # twin's TFLite) get one `prefill_<N>` per N in prefill_lengths. 0 / () = derived (see below).
    prefill_max: int = 0           # 0 = context // 2
    prefill_lengths: tuple[int, ...] = ()   # () = (prefill_max // 2,)
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self) -> None:
        for f in ("vocab", "hidden", "layers", "heads", "kv_heads", "ffn", "context"):
            if getattr(self, f) < 1:
                raise ValueError(f"LMConfig.{f} must be >= 1: {self}")
        if self.heads % self.kv_heads:
            raise ValueError(f"LMConfig: heads {self.heads} not a multiple of kv_heads {self.kv_heads}")
        if not self.head_dim and self.hidden % self.heads:
            raise ValueError(f"LMConfig: hidden {self.hidden} not a multiple of heads {self.heads}")
        if self.dim % 2:
            raise ValueError(f"LMConfig: head_dim {self.dim} must be even (RoPE rotates pairs)")
        if not 1 <= self.max_prefill <= self.context:
            raise ValueError(f"LMConfig: prefill_max {self.max_prefill} not in [1, context {self.context}]")
        if any(not 1 <= n <= self.context for n in self.prefills):
            raise ValueError(f"LMConfig: prefill_lengths {self.prefills} not in [1, context {self.context}]")
        if any(not 0 <= t < self.vocab for t in (self.pad_id, self.bos_id, self.eos_id)):
            raise ValueError(f"LMConfig: special token ids outside the vocabulary {self.vocab}")

    @property
    def dim(self) -> int:
        """Per-head width."""
        return self.head_dim or self.hidden // self.heads

    @property
    def max_prefill(self) -> int:
        return self.prefill_max or self.context // 2

    @property
    def prefills(self) -> tuple[int, ...]:
        return self.prefill_lengths or (max(1, self.max_prefill // 2),)

    def params(self) -> int:
        """Parameter count (untied embedding and head)."""
        attn = self.hidden * self.dim * (self.heads * 2 + self.kv_heads * 2)
        mlp = 3 * self.hidden * self.ffn
        return self.layers * (attn + mlp + 2 * self.hidden) + self.hidden + 2 * self.vocab * self.hidden

    def facts(self) -> dict:
        """What an export record's `info["generation"]` says about the model (JSON-able)."""
        return {"vocab": self.vocab, "context": self.context, "layers": self.layers, "heads": self.heads,
                "kv_heads": self.kv_heads, "head_dim": self.dim, "hidden": self.hidden,
                "prefill_max": self.max_prefill, "prefill_lengths": list(self.prefills),
                "pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id}

    def llama_config(self):
        """The `transformers.LlamaConfig` of this architecture (the PyTorch twin's)."""
        from models.lm_hf import transformers
        return transformers().LlamaConfig(
            vocab_size=self.vocab, hidden_size=self.hidden, intermediate_size=self.ffn,
            num_hidden_layers=self.layers, num_attention_heads=self.heads, num_key_value_heads=self.kv_heads,
            head_dim=self.dim, max_position_embeddings=self.context, rms_norm_eps=self.rms_eps,
            rope_theta=self.rope_theta, tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
            hidden_act="silu", pad_token_id=self.pad_id, bos_token_id=self.bos_id, eos_token_id=self.eos_id,
            use_cache=True)

    @classmethod
    def from_hf(cls, config: dict, **export) -> "LMConfig":
        """From a Hugging Face `config.json` (a dict). `export` sets the export fields (context,
        prefill_max, prefill_lengths); context defaults to the model's max_position_embeddings.
        Architectures this config cannot describe (biases, tied embeddings, rope scaling, other
        activations) raise ValueError naming what is not supported."""
        arch = (config.get("architectures") or ["?"])[0]
        if arch not in HF_ARCHITECTURES:
            raise ValueError(f"architecture {arch} not supported (supported: {', '.join(HF_ARCHITECTURES)})")
        unsupported = [k for k, bad in (("attention_bias", True), ("mlp_bias", True),
                                        ("tie_word_embeddings", True)) if config.get(k, False) == bad]
        if config.get("hidden_act", "silu") != "silu":
            unsupported.append(f"hidden_act={config['hidden_act']}")
        if config.get("rope_scaling"):
            unsupported.append("rope_scaling")
        if unsupported:
            raise ValueError(f"{arch} with {', '.join(unsupported)} not supported")

        def tid(key: str, default: int) -> int:
            v = config.get(key)
            v = v[0] if isinstance(v, list) and v else v
            return default if v is None else int(v)
        rope = config.get("rope_theta") or (config.get("rope_parameters") or {}).get("rope_theta", 10000.0)
        known = {f.name for f in fields(cls)}
        bad = set(export) - known
        if bad:
            raise TypeError(f"LMConfig.from_hf: unknown fields {sorted(bad)}")
        export.setdefault("context", int(config["max_position_embeddings"]))
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        head_dim = int(config.get("head_dim") or 0)
        return cls(vocab=int(config["vocab_size"]), hidden=hidden,
                   layers=int(config["num_hidden_layers"]), heads=heads,
                   kv_heads=int(config.get("num_key_value_heads") or heads), ffn=int(config["intermediate_size"]),
                   head_dim=0 if head_dim == hidden // heads else head_dim,   # 0: the derived width
                   rope_theta=float(rope), rms_eps=float(config.get("rms_norm_eps", 1e-6)),
                   pad_id=tid("pad_token_id", 0), bos_id=tid("bos_token_id", 1), eos_id=tid("eos_token_id", 2),
                   **export)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["prefill_lengths"] = list(self.prefill_lengths)
        return d

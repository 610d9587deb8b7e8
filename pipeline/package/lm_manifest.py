"""`manifest.json` and README of a generative bundle: what an app needs to run a language model artifact
beside the file: the tokenizer, the cache layout, the prefill/decode entry points with their tensors, the
declared bounds (and what the runtime does past them), the parity and the per-token figures measured.
Schema in docs/generative.md ("The bundle").

    man = lm_manifest.build(name=..., platform="android", folder=..., cand=..., runtime="litert", ...)
    text = lm_manifest.readme("android", man)
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from pipeline import parity
from pipeline.generative.generate import probe_label
from pipeline.package import manifest

MANIFEST_KIND = "generative"

# how an app drives each cache convention (the harness's own loop: pipeline/generative/)
HOW = {
    "static_cache": [
        "The KV cache lives inside the program: no cache tensors to pass.",
        "Prefill: call `{prefill}` with the prompt's token ids (int64 [1, S], 1 <= S <= {prefill_max}) and their "
        "positions (int64 [S]: 0..S-1); the logits of the last position (float32 [1, S, vocab]) pick the first "
        "token.",
        "Decode: call `{decode}` with one token id ([1, 1]) and its position ([1]: S, S+1, ...), up to position "
        "{last}. A new conversation starts again at position 0.",
    ],
    "cache_io": [
        "The app owns the KV cache and passes it in and out of every call: per layer i, `kv_cache_k_i` "
        "float32 [1, kv_heads, {context}, head_dim] and `kv_cache_v_i` TRANSPOSED [1, kv_heads, head_dim, {context}], "
        "zeros for a new conversation; each call returns the updated caches.",
        "Attention mask (float32 [1, 1, N, {context}], additive): row i is 0 at the cache positions <= that "
        "token's position and the float32 minimum elsewhere.",
        "Prefill: all prompt tokens but the last through `prefill_N` (N in {prefill_lengths}; tokens int32 [1, N] "
        "padded with any id, input_pos int32 [N] = 0..N-1; returns only the caches), then the last prompt token "
        "through `{decode}` (tokens [1, 1], input_pos [pos], mask [1, 1, 1, {context}]) whose logits [1, 1, vocab] "
        "pick the first token.",
        "Decode: `{decode}` per token, positions counting on, up to position {last}. Past it the runtime writes "
        "clamped into the cache WITHOUT an error (see bounds): stop at {context} tokens.",
    ],
    "past_present": [
        "The app passes the cache as `past_key_i` / `past_value_i` float32 [1, kv_heads, P, head_dim] "
        "(P = 0 for a new conversation) and gets `present_key_i` / `present_value_i` [1, kv_heads, P + S, "
        "head_dim] back: the next call's pasts.",
        "Prefill: `input_ids` int64 [1, S] with P = 0; the last position of `logits` [1, S, vocab] picks the "
        "first token. Decode: S = 1 with the last presents.",
        "Nothing in the file bounds P + S: keep it <= {context} (the length verified here).",
    ],
    "coreai_state": [
        "The KV cache is Core AI state: allocate each of the function's state arrays once (zeros, the names, "
        "shapes and dtypes its descriptor gives) and pass the same dictionary to every call "
        "(`await fn(inputs, state=states)`); the runtime updates it in place. A new conversation: fresh zeros.",
        "Prefill: `prefill_N` (N in {prefill_lengths}) with `input_ids` int32 [1, N] (the prompt padded with any "
        "id) and `cache_position` int32 [N] = 0..N-1; the logits [1, N, vocab] at the prompt's last token pick "
        "the first token.",
        "Decode: `{decode}` with one token id ([1, 1]) and its position ([1]), positions counting on, up to "
        "position {last}.",
    ],
}


def format_facts(cand, work: Path) -> dict:
    """What the runtime needs to load the file (operators, minimum versions): the classic bundle's facts
    (`manifest.format_facts`) for the formats it reads; none for an ONNX file."""
    return manifest.format_facts(cand, work) if cand.export.format in ("tflite", "pte", "aimodel") else {}


def build(*, name: str, platform: str, folder, folder_sha: str, contract, cand, runtime: str, file_name: str,
          format_facts: dict, samples: dict, profiles: list[str], choice_reason: str, prefer: str,
          command: str) -> dict:
    exp = cand.export
    g = exp.info["generation"]
    check = cand.checks[runtime]
    first = next((r for r in cand.bench if r.runtime == runtime and r.profile == profiles[0]), None)
    from pipeline.generative import session_class
    from pipeline.generative.session import LMFacts
    conv = session_class(g["convention"])
    facts = LMFacts.of(exp.info)
    bounds = {"context": contract.context, "prompt_min": 1, "prompt_max": conv.max_prompt(facts),
              "prefill_entry_max": conv.prefill_bound(facts), "prefill_lengths": g.get("prefill_lengths"),
              "vocab": contract.vocab,
              "what_the_runtime_does": [{k: p.get(k) for k in ("probe", "length", "within", "outcome", "error", "sqnr_db")}
                                        for p in (first.info.get("probes", []) if first else [])]}
    measured = {"size_bytes": int(exp.metrics.get("size_bytes", 0)),
                "size_zipped_bytes": int(exp.metrics.get("size_zipped_bytes", 0)), "profiles": {}}
    for r in cand.bench:
        if r.runtime == runtime and parity.ran(r.status):
            measured["profiles"][r.profile] = {k: r.metrics.get(k) for k in (
                "ttft_ms", "ttft_cold_ms", "decode_tokens_per_s", "decode_ms_per_token", "peak_rss_mb", "load_ms")} | \
                {"threads": r.threads}
    keep = ("sqnr_db", "logits_sqnr_db_min", "top1_agreement", "top1_agreement_decisive", "greedy_identical_share",
            "greedy_steps_equal_min", "perplexity", "reference_perplexity", "perplexity_increase_pct")
    return {
        "manifest_version": manifest.MANIFEST_VERSION, "kind": MANIFEST_KIND,
        "name": name, "platform": platform,
        "source": {"kind": "hf_lm", "path": str(folder.path), "sha256": folder_sha,
                   "architecture": folder.architecture, "ignored_files": list(folder.ignored)},
        "tokenizer": {"file": "tokenizer.json", "bos_id": contract.bos_id, "eos_id": contract.eos_id,
                      "pad_id": contract.pad_id, "vocab": contract.vocab},
        "artifact": {"file": file_name, "sha256": exp.artifact_sha256, "bytes": int(exp.metrics.get("size_bytes", 0)),
                     "format": exp.format, "export_path": exp.path, "quantization": exp.quantization},
        "generation": {"convention": g["convention"], "cache_layout": g.get("convention_text", ""),
                       "entry_points": g.get("entry_points", {}), "signatures": g.get("signatures", {}),
                       "layers": contract.layers, "kv_heads": contract.kv_heads, "head_dim": contract.dim,
                       "how_to_run": how_to_run(g, contract)},
        "bounds": bounds,
        "runtime": {"verified_with": {"name": runtime, "version": check.version}, "minimum": format_facts},
        "parity": {"status": check.status, "reason": check.error,
                   "reference": "the folder's own model (transformers, float32, no cache), teacher-forced along its "
                                "greedy tokens",
                   "thresholds": dataclasses.asdict(parity.for_generation(exp.quantization)),
                   "metrics": {k: check.metrics[k] for k in keep if k in check.metrics}},
        "prompts": samples, "measured": measured, "bench_profiles": profiles,
        "choice": {"prefer": prefer, "reason": choice_reason, "speed": "time per decoded token"},
        "command": command,
        "sandbox": manifest._sandbox_status(),   # the workers that opened the folder: bubblewrap, or "off"
        "tool_versions": {p: manifest._version(p) for p in ("torch", "transformers", "executorch", "ai-edge-litert",
                                                            "litert-torch", "onnxruntime", "coreai-core",
                                                            "coreai-torch", "coreai-opt")},
    }


def how_to_run(g: dict, contract) -> list[str]:
    ep = g.get("entry_points") or {}
    prefill = ep.get("prefill") or ["forward"]
    fill = {"prefill": prefill[0] if isinstance(prefill, list) else prefill, "decode": ep.get("decode") or "forward",
            "prefill_max": g.get("prefill_max"), "prefill_lengths": g.get("prefill_lengths"),
            "context": contract.context, "last": contract.context - 1}
    return [s.format(**fill) for s in HOW[g["convention"]]]


def readme(platform: str, man: dict) -> str:
    a, gen, b = man["artifact"], man["generation"], man["bounds"]
    par = man["parity"]
    m = par["metrics"]
    figures = "; ".join(f"{p}: TTFT {v['ttft_ms']:.2f} ms, {v['decode_tokens_per_s']:.0f} decoded tokens/s, peak RSS "
                        f"{v['peak_rss_mb']:.0f} MB" for p, v in man["measured"]["profiles"].items()
                        if v.get("ttft_ms") is not None)
    probes = "\n".join(f"- {probe_label(p)} ({'within' if p['within'] else 'PAST'} the bound): "
                       f"{p['outcome']}" + (f" ({p['error']})" if p.get("error") else "")
                       for p in b["what_the_runtime_does"])
    steps = "\n".join(f"{i}. {s}" for i, s in enumerate(gen["how_to_run"], 1))
    ppl = (f"; held-out perplexity {m['perplexity']:.3f} vs {m['reference_perplexity']:.3f} for the source model "
           f"({m['perplexity_increase_pct']:+.2f} %)" if "perplexity" in m else "")
    return f"""# {man['name']} for {platform} (a language model)

Ship `{a['file']}` ({a['format']}, {a['quantization']}, {a['bytes']} bytes, sha256 `{a['sha256'][:16]}...`) with
`tokenizer.json` (bos {man['tokenizer']['bos_id']}, eos {man['tokenizer']['eos_id']}). Made from
`{man['source']['path']}` ({man['source']['architecture']}) by the export path `{a['export_path']}`. Why this
file: {man['choice']['reason']}

## Run it: {gen['convention']}
{steps}

Entry points and every tensor: `manifest.json` `generation.signatures`.

## Bounds
A cache of {b['context']} positions; prompts of 1 to {b['prompt_max']} tokens (the prefill entry point takes
at most {b['prefill_entry_max']}). What
{man['runtime']['verified_with']['name']} itself did at and past them (called directly, no checks in between):
{probes or '(not probed)'}
Keep every call inside the bounds in the app: a runtime that answers past them may answer wrongly.

## How sure we are
Parity vs the source model on {man['prompts']['measured']} prompt(s) from {man['prompts']['file']}:
{par['status']}{(' (' + par['reason'] + ')') if par['reason'] else ''}; greedy tokens identical on
{m.get('greedy_identical_share', float('nan')):.0%} of the prompts, logits SQNR {m.get('sqnr_db', float('nan')):.1f} dB{ppl}.
Host timings (not a phone): {figures}. Everything else: `manifest.json` (docs/generative.md in mobilebench).
"""

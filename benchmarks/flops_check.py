"""FLOP cross-check of the release U-Net (meta device, no weights, a few seconds).

Reference (lead): batch 2, 8 frames: 1.84 TFLOP per call at a 32x32 latent, 7.12 at 64x64,
counted with torch's FlopCounterMode on the reference implementation. uavrt's count is lower by
the text K/V projections the reference repeats once per frame (uavrt projects them once per
sample); adding those back must give the reference numbers. See uavrt/bench/flops.py.
Writes benchmarks/results/flops_crosscheck.{json,md}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REFERENCE = {"32x32": 1.84, "64x64": 7.12}


def main() -> int:
    import torch
    from uavrt.bench.flops import flops_crosscheck
    rows = flops_crosscheck((32, 64))
    ok = True
    for r in rows:
        r["lead_reference_tflop"] = REFERENCE[r["latent"]]
        r["matches"] = abs(r["reference_equivalent_tflop"] - r["lead_reference_tflop"]) <= 0.005
        ok &= r["matches"]
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "counted_on": "meta device (torch.utils.flop_counter.FlopCounterMode)",
            "model": "release U-Net config uavrt/models/configs/unet_video.json (691M parameters)"}
    (out / "flops_crosscheck.json").write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
    md = ["# U-Net FLOP cross-check (release architecture, batch 2, 8 frames, 77 text tokens)", "",
          f"Counted with torch {torch.__version__} FlopCounterMode on the meta device (no weights needed).", "",
          "| latent | uavrt TFLOP/call | + reference's per-frame text K/V | = reference-equivalent | lead's number | match |",
          "|---|---|---|---|---|---|"]
    md += [f"| {r['latent']} | {r['uavrt_tflop']:.4f} | {r['reference_text_kv_repeat_tflop']:.4f} | "
           f"{r['reference_equivalent_tflop']:.4f} | {r['lead_reference_tflop']} | {'yes' if r['matches'] else 'NO'} |"
           for r in rows]
    md += ["", "The reference repeats the 77 prompt tokens for every frame before the cross-attention K/V",
           "projections; uavrt projects them once per sample (same attention result), saving "
           f"{rows[0]['reference_text_kv_repeat_tflop'] * 1e3:.1f} GFLOP per call at any resolution.",
           "On real CPU tensors the counter reports less (torch routes attention to a CPU flash kernel it has no",
           "formula for; measured once on the 2-core CPU machine with real random weights: 1.7609 TFLOP at",
           "32x32 instead of 1.7695), so the harness always counts on the meta device."]
    (out / "flops_crosscheck.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

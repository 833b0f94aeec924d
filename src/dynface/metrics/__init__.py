"""Scores of restored faces (docs/evaluation.md), in the order `dynface eval` runs them:

1. `fidelity`  PSNR and SSIM against ground truth.
2. `lpips`, `face`  perceptual and identity distances (`face`: dlib embeddings).
3. `niqe`      no-reference quality; `fid` with `inception` features for sets.
4. `evaluate`  pairs files and runs the metrics (`evaluate`); `report` writes and compares
   summaries; `weights` finds the metric networks.
"""

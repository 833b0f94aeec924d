"""Run under torchrun by test_eval_multiprocess: FID with the tiny extractor, without accelerate.

accelerate is hidden, so this run takes dynface.parallel's plain torch.distributed (gloo) path;
the CLI test covers the accelerate path.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from dynface.metrics.evaluate import EvalOptions, evaluate
from dynface.metrics.report import write_report
from dynface.parallel import finish

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.test_metrics_fid import tiny_extractor  # noqa: E402

sys.modules["accelerate"] = None  # as if `dynface[train]` were not installed
restored, gt, out, cache = (Path(a) for a in sys.argv[1:5])
options = EvalOptions(
    metrics=("psnr", "fid"), fid_extractor=("tiny", tiny_extractor()), cache_dir=cache
)
report = evaluate(restored, gt, options, progress=False)
assert torch.distributed.get_world_size() == 2 and "accelerate.state" not in sys.modules
if report is not None:
    write_report(report, out, "two")
finish()

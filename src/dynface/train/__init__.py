"""Training of the blur-level estimator (SDE, TM, SE) and of DGSA, on accelerate (docs/training.md):

1. `config`      the typed training config (`TrainConfig`) and its presets.
2. `tasks`       what each trainer learns from a batch (`Task`; `sde`, `tm`, `se`); `dgsa` for DGSA.
3. `losses`      L1, the stationary-wavelet loss and DISTS.
4. `loop`        the accelerate loop: steps, validation, logs (`train`).
5. `checkpoint`  resumable checkpoints and the final weights.
"""

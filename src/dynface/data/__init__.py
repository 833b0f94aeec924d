"""Training and test data, in data-path order (docs/training.md):

1. `degrade`   synthetic degradations y = jpeg(down(k * x) + n) (`Degradation`,
               `RandomDegradation`).
2. `targets`   the estimator's target, the equivalent blur level s* (`equivalent_blur_level`).
3. `datasets`  datasets of (degraded, target) pairs for the trainers.
4. `testset`   writes a fixed test set to disk (`write_test_set`); `protocols` names the presets.
"""

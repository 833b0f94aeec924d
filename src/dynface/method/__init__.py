"""DynFaceRestore's method on aligned faces, in data-path order (docs/method.md):

1. `dblm`       blur level s* = SE(y) (`LearnedEstimator`) or the zero-shot fit
                (`ZeroShotEstimator`);
                guidance levels s_j and images g_j = k(s_j) * r (`guidance_levels`,
                `guidance_images`); `learned_se` loads the shipped estimator.
2. `dsst`       start steps t(s) (`DSSTable`, `to_respaced_index`).
3. `eta`        dynamic DDIM eta (`dynamic_eta`).
4. `dgsa`       per-pixel guidance strength A (`HeuristicDGSA`, `LearnedDGSA`, `GuidanceScale`).
5. `plan`       everything decided before sampling (`SamplingPlan`, `plan_dynface`,
                `plan_difface`).
6. `guidance`   x0' by closed form or a gradient step (`guide`, `closed_form_guidance`, `blend`);
   `hook`       applies it inside the sampler (`GuidanceHook`).
7. `trace`      what happened to each face (`FaceTrace`).
`pipeline` runs 1-7 on a batch (`Pipeline`); `blur` and `spectra` are the Gaussian blur and the
power spectra they share.
"""

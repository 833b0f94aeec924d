"""Faces in whole photos, in data-path order (docs/restore.md):

1. `detect`  RetinaFace boxes and five landmarks (`FaceDetector`, `DetectedFace`, `select_faces`).
2. `align`   similarity warp onto the FFHQ template (`align_faces`, `estimate_affine`).
3. `paste`   the background upscaled in tiles (`upscale_background`), restored crops blended
             back region by region (`paste_faces`, `paste_back`).
"""

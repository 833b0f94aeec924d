"""Is the restored face still the same person? dlib's ResNet embedding, calibrated for dynface.

- `distance(a, b)`: identity distance of the faces in two images, None when one has no face.
- `compare(...)`: the same with the reason, and for pixel-aligned pairs (restored face, input).
- `SAME_PERSON`: the largest distance taken as the same person (docs/identity.md calibrates it).
"""

from dynface.identity.measure import IdentityCheck, compare, distance

#: The largest identity distance taken as the same person: the threshold with the best balanced
#: accuracy over CelebRef-HQ pairs at the degradation levels of docs/identity.md (0.979 pooled,
#: against 0.964 at dlib's usual 0.6; benchmarks/identity_calibration.py).
SAME_PERSON = 0.65

__all__ = ["SAME_PERSON", "IdentityCheck", "compare", "distance"]

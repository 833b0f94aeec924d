"""What a photo file says about itself (EXIF, ICC colour profile), carried to the restored photo.

Archives sort by the date a photo was taken, and colour-managed viewers need its profile: the
final photo keeps the input's EXIF (camera, dates, GPS, captions) and ICC profile. The pixels are
written upright and resized, so the EXIF orientation becomes 1 and the stated pixel size the
output's; `Software` names dynface, so the file itself says that it was restored (our choice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

ORIENTATION = 0x0112
SOFTWARE = 0x0131
EXIF_IFD = 0x8769
PIXEL_X_DIMENSION = 0xA002
PIXEL_Y_DIMENSION = 0xA003
#: The ICC colour space (bytes 16-20 of the profile header) of the restored photo: RGB.
RGB_SPACE = b"RGB "
#: Formats that hold EXIF and an ICC profile when Pillow writes them.
CARRYING_FORMATS = ("JPEG", "PNG", "WEBP")


@dataclass(frozen=True)
class ImageMetadata:
    """A file's EXIF block and ICC profile, as bytes (None when it has none)."""

    exif: bytes | None = None
    icc_profile: bytes | None = None
    #: What the file held that the restored photo cannot carry, in words (for the summary).
    lost: tuple[str, ...] = ()

    @classmethod
    def of(cls, image: Image.Image) -> ImageMetadata:
        """The metadata of an opened image file, read before any EXIF transpose."""
        lost = []
        try:
            exif = image.getexif()
            block = exif.tobytes() if len(exif) else None
        except Exception as exc:  # any EXIF Pillow cannot re-write: say so and go on
            block = None
            lost.append(f"EXIF not carried (unreadable: {type(exc).__name__})")
        profile = image.info.get("icc_profile") or None
        if profile is not None and profile[16:20] != RGB_SPACE:  # gray or CMYK: the output is RGB
            lost.append(
                f"{profile[16:20].decode(errors='replace').strip()} colour profile not carried"
            )
            profile = None
        return cls(block, profile, tuple(lost))

    def save_options(self, image: Image.Image, fmt: str) -> dict[str, Any]:
        """Pillow `save` arguments that carry this metadata into `image` written as `fmt`.

        The profile goes only with RGB pixels: on others viewers would misread the colours.
        """
        if fmt not in CARRYING_FORMATS:
            return {}
        options: dict[str, Any] = {"exif": self._exif_for(image.size)}
        profile = self.icc_profile
        if profile is not None and image.mode in ("RGB", "RGBA"):
            options["icc_profile"] = profile
        return options

    def _exif_for(self, size: tuple[int, int]) -> bytes:
        """The EXIF block for upright pixels of `size` (width, height), signed by dynface."""
        from dynface import __version__

        exif = Image.Exif()
        if self.exif is not None:
            exif.load(self.exif)
        exif[ORIENTATION] = 1
        exif[SOFTWARE] = f"dynface {__version__} (faces restored)"
        details = exif.get_ifd(EXIF_IFD)
        if PIXEL_X_DIMENSION in details or PIXEL_Y_DIMENSION in details:
            details[PIXEL_X_DIMENSION], details[PIXEL_Y_DIMENSION] = size
        return exif.tobytes()

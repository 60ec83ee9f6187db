"""Validation of what a client uploads to guide a render."""

from __future__ import annotations

import io
import warnings

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

from generation.errors import InvalidRequest

ACCEPTED_IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")


def check_input_reference(upload: UploadedFile) -> bytes:
    """Return the image re-encoded as PNG (metadata dropped), or raise InvalidRequest.

    The pixel limit is checked from the header before any decoding, so a decompression bomb
    is refused without allocating its pixels.
    """
    param = "input_reference"
    if upload.size is None or upload.size > settings.INPUT_REFERENCE_MAX_BYTES:
        raise InvalidRequest(
            f"input_reference is larger than {settings.INPUT_REFERENCE_MAX_BYTES} bytes.",
            param=param,
            code="file_too_large",
        )
    data = upload.read()
    if not data:
        raise InvalidRequest("input_reference is empty.", param=param, code="invalid_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_IMAGE_FORMATS)
            width, height = image.size
            if width * height > settings.INPUT_REFERENCE_MAX_PIXELS:
                raise InvalidRequest(
                    f"input_reference has {width}x{height} pixels; at most "
                    f"{settings.INPUT_REFERENCE_MAX_PIXELS} pixels are accepted.",
                    param=param,
                    code="image_too_large",
                )
            image.load()  # a truncated file fails here
            rgb_image = image.convert("RGB")
    except InvalidRequest:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidRequest(
            "input_reference is too large once decoded.", param=param, code="image_too_large"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InvalidRequest(
            "input_reference must be a complete JPEG, PNG or WebP image.",
            param=param,
            code="invalid_image",
        ) from None
    output = io.BytesIO()
    rgb_image.save(output, format="PNG")
    return output.getvalue()

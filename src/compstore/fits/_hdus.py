"""Opening FITS files, writing them atomically, and choosing and reading image HDUs."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from astropy.io import fits

from compstore._atomic import replace_atomically
from compstore.errors import FitsFormatError, ObjectError

from ._cards import _TABLE_EXTNAMES

#: How a caller names one HDU: its index, its EXTNAME, or (EXTNAME, EXTVER).
HduSpec = int | str | tuple[str, int]


def _hdu_of(hdul: fits.HDUList, name: str) -> fits.hdu.base._BaseHDU | None:
    try:
        return hdul[name]
    except KeyError:
        return None


# -- opening ---------------------------------------------------------------------------------
def _open(path: str | os.PathLike[str]) -> tuple[str, fits.HDUList]:
    """Open ``path`` read-only.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    FitsFormatError
        If it is not a FITS file.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"{name}: no such FITS file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            hdul = fits.open(name, memmap=False, lazy_load_hdus=False)
    except (OSError, ValueError, TypeError, IndexError, fits.VerifyError) as exc:
        raise FitsFormatError(f"{name}: not a readable FITS file: {exc}") from exc
    return name, hdul


def _write_atomic(hdul: fits.HDUList, path: str | os.PathLike[str]) -> None:
    """Write ``hdul`` to ``path`` via ``path.partial`` and ``os.replace``, so a reader
    never sees half a file (no fsync: a FITS export is not repository state).

    Raises
    ------
    FitsFormatError
        If astropy refuses to write ``hdul`` (nothing is left behind).
    """
    target = os.fspath(path)
    with replace_atomically(target, partial=target + ".partial") as partial:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fits.verify.VerifyWarning)
                hdul.writeto(partial, overwrite=True, output_verify="exception")
        except (ValueError, fits.VerifyError) as exc:
            raise FitsFormatError(f"{target}: cannot write FITS: {exc}") from exc



@contextlib.contextmanager
def _read_errors(name: str, what: str) -> Iterator[None]:
    """Turn what reading file ``name`` as ``what`` may raise into a `FitsFormatError` naming it."""
    try:
        yield
    except (FitsFormatError, FileNotFoundError):
        raise
    except ObjectError as exc:
        raise FitsFormatError(f"{name}: {exc}") from exc
    except (OSError, ValueError, TypeError, KeyError, IndexError, fits.VerifyError) as exc:
        # Truncated data and damaged headers surface from astropy as any of these.
        raise FitsFormatError(f"{name}: cannot read as {what}: {exc}") from exc



def _pixel_values(data: Any, path: str, extname: str, *, copy: bool = False) -> np.ndarray:
    """Pixels as a native-order float array that holds every value exactly.

    float32 and float64 stay as they are (BZERO/BSCALE already applied by astropy);
    integers of up to 16 bits become float32 and wider ones float64, both exact.

    Raises
    ------
    FitsFormatError
        If a value cannot be held exactly (64-bit integers beyond 2**53, complex).
    """
    arr = np.asarray(data)
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "f" and size in (4, 8):
        target = np.dtype(np.float32 if size == 4 else np.float64)
    elif kind in "iub" and size <= 2:
        target = np.dtype(np.float32)
    elif kind in "iu" and size <= 8:
        if size == 8 and arr.size and int(np.abs(arr).max()) > 2**53:
            raise FitsFormatError(
                f"{path}: HDU {extname} holds 64-bit integers beyond 2**53, which no float "
                "image holds exactly; convert them before ingesting"
            )
        target = np.dtype(np.float64)
    else:
        raise FitsFormatError(
            f"{path}: HDU {extname} holds {arr.dtype} pixels; an Exposure holds float32 or "
            "float64 images"
        )
    return arr.astype(target, copy=copy or arr.dtype != target)


def _is_image(hdu: Any) -> bool:
    return (
        isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))
        and hdu.header.get("NAXIS", 0) >= 2
        and hdu.name not in _TABLE_EXTNAMES
        and hdu.data is not None
        and hdu.data.ndim >= 2
    )


def _hdu_label(hdul: fits.HDUList, hdu: Any) -> str:
    ver = hdu.header.get("EXTVER", 1)
    name = f"({hdu.name!r}, {ver})" if ver != 1 else repr(hdu.name)
    return f"{hdul.index_of(hdu)} {name}"


def select_image_hdu(hdul: fits.HDUList, path: str, hdu: HduSpec | None) -> Any:
    """The image HDU ``hdu`` names, or the only image HDU of ``hdul``.

    Raises
    ------
    FitsFormatError
        If there is no such HDU, it holds no 2-D image, there is no image at all, or
        ``hdu`` is None and there are several (a multi-extension file).
    """
    images = [h for h in hdul if _is_image(h)]
    if hdu is None:
        if len(images) == 1:
            return images[0]
        if not images:
            kinds = ", ".join(f"{type(h).__name__}{getattr(h.data, 'shape', '')}" for h in hdul)
            raise FitsFormatError(f"{path}: no HDU holds a 2-D (or higher) image; found {kinds}")
        listing = ", ".join(_hdu_label(hdul, h) for h in images)
        raise FitsFormatError(
            f"{path} holds {len(images)} images (HDUs {listing}); say which to read with "
            "hdu= (CLI: --hdu), an index, an EXTNAME or (EXTNAME, EXTVER)"
        )
    try:
        chosen = hdul[tuple(hdu) if isinstance(hdu, list) else hdu]
    except (KeyError, IndexError, TypeError):
        listing = ", ".join(_hdu_label(hdul, h) for h in hdul)
        raise FitsFormatError(f"{path} has no HDU {hdu!r}; its HDUs are {listing}") from None
    if not _is_image(chosen):
        raise FitsFormatError(
            f"{path}: HDU {_hdu_label(hdul, chosen)} holds no 2-D image "
            f"({type(chosen).__name__}{getattr(chosen.data, 'shape', '')})"
        )
    return chosen


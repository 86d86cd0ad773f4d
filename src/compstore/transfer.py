"""The old import path of `compstore.butler.transfer` (subsets and transfers), kept working."""

from __future__ import annotations

from .butler.transfer import TransferReport, closure, copy_datasets, subset, transfer

__all__ = ["TransferReport", "closure", "copy_datasets", "subset", "transfer"]

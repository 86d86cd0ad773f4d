"""The Butler: the facade users hold, and what it does over a whole repository.

==================  ==========================================================
``_butler.py``      `Butler`: open/create, collections, get, defined types,
                    zarr views, subsets and transfers; combines the groups below
``_base.py``        `ButlerBase`: the state every group of methods shares
``_names.py``       ``TYPE[.COMPONENT][:STAGE]`` names (`parse_dataset_name`)
``_lookup.py``      the lookup policy and its data-ID memo (`find_dataset`)
``_put.py``         the put path (`put`, `put_many`, `put_stream`), `PutResult`
``_remove.py``      `remove`, `remove_run`, `gc` and the referrer check
``_stats.py``       `stats`, `logical_bytes`, `verify`; `RepositoryStats`
``verify.py``       `verify_repository`, `VerifyReport`
``gc.py``           garbage collection, the gc lock of puts
``transfer.py``     subsets and transfers (`subset`, `copy_datasets`)
==================  ==========================================================

``compstore.gc``, ``compstore.verify`` and ``compstore.transfer`` remain as
the old import paths of the last three.
"""

from __future__ import annotations

from ._butler import DEFAULT_CACHE_BYTES as DEFAULT_CACHE_BYTES  # the Butler's default cache_bytes
from ._butler import Butler
from ._names import DatasetName, parse_dataset_name
from ._put import PutResult
from ._stats import RepositoryStats

__all__ = ["Butler", "DatasetName", "PutResult", "RepositoryStats", "parse_dataset_name"]

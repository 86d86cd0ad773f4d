"""The words of ``compstore --help`` and the example under each command's help."""

from __future__ import annotations

__all__ = ["DESCRIPTION", "EPILOG", "EXAMPLES", "epilog_for"]

DESCRIPTION = """\
A caching, content-addressed store for astronomical composite datasets.

Every command is one call of compstore's Python API, and --python prints that
Python instead of running it: `compstore query calexp --python` shows how to do
the same from a script or a notebook.

examples:
  compstore demo                                  # a synthetic survey in ./store
  compstore --repo store stats                    # options go before or after the command
  compstore query calexp --where "visit = 1" --json
  compstore get calexp.wcs visit=1 detector=12
  compstore verify --deep
  compstore stats --python                        # the Python behind a command
"""

EPILOG = """\
The repository is --repo, else $COMPSTORE_REPO, else ./store. Exit status: 0 success,
1 a compstore error, 2 a usage error, 3 something named was not found, 4 verify found
damage, 130 interrupted. Shell completion: pip install argcomplete, then
eval "$(register-python-argcomplete compstore)". Details: docs/cli-and-python.md.
"""

#: One example per command, shown under ``compstore COMMAND --help``.
EXAMPLES: dict[str, str] = {
    "create": "compstore create --repo store --exist-ok",
    "upgrade": "compstore upgrade --repo store",
    "register-dataset-type": "compstore register-dataset-type calexp visit,detector Exposure",
    "register-aggregate": "compstore register-aggregate src_visit src --over detector",
    "register-join": "compstore register-join objectTable deepCoadd_meas,deepCoadd_ref --on id",
    "ingest": "compstore ingest calexp a.fits b.fits --run raw --header-key visit=VISIT "
              "--header-key detector=DETECTOR",
    "get": "compstore get calexp.calib visit=1 detector=12 --json",
    "export": "compstore export calexp visit=1 detector=12 -o calexp-1-12.fits",
    "query": 'compstore query calexp --where "visit = 1 AND detector IN (7, 12)" --json',
    "stats": "compstore stats --json",
    "verify": "compstore verify --deep    # exit status 4 if damage is found",
    "demo": "compstore demo --visits 2 --detectors 2 --size 256",
    "run": "compstore run -p pipeline.yaml -i sfm -o jointcal -d \"visit = 1\" -j 2",
    "provenance": "compstore provenance calexp:jointcal visit=1 detector=12 --json",
    "collection-chain": "compstore collection-chain latest jointcal,sfm",
    "tag": 'compstore tag best calexp --where "visit = 1" --collections sfm',
    "query-collections": "compstore query-collections 'u/*' --json",
    "subset": "compstore subset catalogs --dataset-type src --where \"visit = 1\"",
    "zarr-path": "compstore zarr-path calexp.image visit=1 detector=12",
    "remove": "compstore remove calexp --where \"visit = 1\" --collections sfm --dry-run",
    "gc": "compstore gc --dry-run --json",
    "transfer": "compstore transfer --repo catalogs --from store --dataset-type src --json",
}


def epilog_for(name: str) -> str | None:
    """The ``example:`` section of command ``name``'s help (None if it has none)."""
    example = EXAMPLES.get(name)
    return f"example:\n  {example}\n" if example else None

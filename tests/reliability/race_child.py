"""A writer or a reader of `test_race.py`, run as its own process (not collected by pytest).

    python race_child.py writer ROOT INDEX PUTS GO_FILE
    python race_child.py reader ROOT INDEX 0 STOP_FILE

Data: dataset ``calexp`` ``visit=i+1, detector=KEY`` in run ``w<INDEX>`` holds
`exposure(KEY)`. Even items use a shared key (every writer puts the same
exposures, in the same order, at the same time); odd items a key of their own.
A writer prints one JSON line per acknowledged put; a reader prints its counts.
"""

from __future__ import annotations

import functools
import json
import os
import random
import sys
import time
import traceback

import numpy as np

SHARED = 6


def size_of(key: int) -> int:
    # Every third shared exposure is big: its planes are array folders, the rest packed.
    return 512 if key < SHARED and key % 3 == 0 else 64


@functools.lru_cache(maxsize=None)
def exposure(key: int):  # type: ignore[no-untyped-def]
    """Shared keys: a whole exposure. Own keys: a shared one's pixels, Wcs, Psf... with its own Calib.

    So a writer's pack mixes components other writers put too with its own:
    two writers' packs are different files holding some of the same components.
    """
    from compstore import Calib
    from compstore.testing.sky import make_exposure

    if key < SHARED:
        return make_exposure(1, key, size=size_of(key), seed=7)
    return exposure(key % SHARED).replace(calib=Calib(1000.0 + key))


def key_of(writer: int, item: int, puts: int) -> int:
    return (item // 2) % SHARED if item % 2 == 0 else 100 + writer * puts + item


def same(got, want) -> bool:  # type: ignore[no-untyped-def]
    return (
        np.array_equal(got.image, want.image)
        and np.array_equal(got.mask.array, want.mask.array)
        and np.array_equal(got.variance, want.variance)
        and got.wcs == want.wcs
        and got.calib == want.calib
    )


def writer(root: str, index: int, puts: int, go: str) -> None:
    from compstore import Butler

    butler = Butler(root, run=f"w{index}")
    made = [exposure(key_of(index, i, puts)) for i in range(puts)]  # before the start line
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    for i, exp in enumerate(made):
        key = key_of(index, i, puts)
        butler.put(exp, "calexp", visit=i + 1, detector=key)
        print(json.dumps({"run": f"w{index}", "visit": i + 1, "detector": key}), flush=True)


def reader(root: str, index: int, stop: str) -> None:
    from compstore import Butler

    rng = random.Random(index)
    wanted: dict[int, object] = {}
    reads = corrupt = errors = 0
    butler = Butler(root)
    while True:
        done = os.path.exists(stop)  # one last round after the writers finished
        try:
            refs = butler.registry.query_datasets("calexp")
        except Exception:  # noqa: BLE001 - counted, and shown
            errors += 1
            traceback.print_exc()
            refs = []
        for ref in rng.sample(refs, min(8, len(refs))):
            key = ref.data_id["detector"]
            try:
                got = Butler(root).get(ref) if rng.random() < 0.2 else butler.get(ref)
                reads += 1
            except Exception:  # noqa: BLE001 - counted, and shown
                errors += 1
                traceback.print_exc()
                continue
            if key not in wanted:
                wanted[key] = exposure(key)
            if not same(got, wanted[key]):
                corrupt += 1
                print(f"corrupt read of {ref}", file=sys.stderr)
        if done:
            break
    print(json.dumps({"reads": reads, "corrupt": corrupt, "errors": errors}), flush=True)


if __name__ == "__main__":
    role, root, index, puts, flag = sys.argv[1:6]
    if role == "writer":
        writer(root, int(index), int(puts), flag)
    else:
        reader(root, int(index), flag)

"""8 writer processes on one PostgreSQL-registry repository, overlapping data IDs and digests.

Each writer puts every visit into its own RUN (nothing may be lost) and races
the others to put the same visits into one shared RUN (exactly one wins each
data ID, the others get ConflictingDatasetError): rows lost 0, duplicate data
IDs in one run 0, deadlocks and other errors 0.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import psycopg

from compstore import Butler

WRITERS = 8

CHILD = r"""
import json, sys
import numpy as np
from compstore import Butler
from compstore.errors import ConflictingDatasetError

root, index, visits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
own = Butler(root, run=f"w{index}")
shared = Butler(root, run="shared")
result = {"put": 0, "conflicts": 0, "errors": []}
# Each writer walks the visits from another start, so the races are spread.
for step in range(visits):
    visit = (step + index * 7) % visits
    data = np.full(16, visit, dtype="i4")  # the same digest in every writer
    try:
        own.put(data, "x", visit=visit)
        result["put"] += 1
    except Exception as exc:
        result["errors"].append(f"own {visit}: {type(exc).__name__}: {exc}")
    try:
        shared.put(data, "x", visit=visit)
    except ConflictingDatasetError:
        result["conflicts"] += 1
    except Exception as exc:
        result["errors"].append(f"shared {visit}: {type(exc).__name__}: {exc}")
own.blobs.sync()
print(json.dumps(result))
"""


def test_eight_writers_on_postgresql(tmp_path, postgres_url, reliability_scale, reliability_counts):
    visits = 40 * reliability_scale
    root = tmp_path / "repo"
    butler = Butler.create(root, registry=postgres_url)
    butler.register_dataset_type("x", ("visit",), "Array")
    Butler(root, run="shared")  # registered once, before the race
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), str(i), str(visits)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(WRITERS)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    errors = [e for r in results for e in r["errors"]]
    deadlocks = sum("deadlock" in e.lower() for e in errors)
    with psycopg.connect(postgres_url) as conn:
        per_run = dict(conn.execute(
            "SELECT c.name, count(*) FROM dataset d JOIN collection c ON c.id = d.run_id GROUP BY c.name"
        ).fetchall())
        duplicates = conn.execute(
            "SELECT count(*) FROM (SELECT run_id, data_id_key FROM dataset "
            "GROUP BY dataset_type_id, run_id, data_id_key HAVING count(*) > 1) AS d"
        ).fetchone()[0]
    lost = sum(visits - per_run.get(f"w{i}", 0) for i in range(WRITERS))
    lost += visits - per_run.get("shared", 0)
    conflicts = sum(r["conflicts"] for r in results)
    reliability_counts(
        "8 writers, PostgreSQL", rows=sum(per_run.values()), rows_lost=lost,
        duplicate_data_ids=duplicates, deadlocks=deadlocks, errors=len(errors),
        expected_conflicts=conflicts,
    )
    assert not errors, errors[:5]
    assert lost == 0 and duplicates == 0
    assert conflicts == (WRITERS - 1) * visits  # one winner per shared data ID
    # Every row reads back, from a fresh Butler, with the right data.
    reader = Butler(root, collections=["shared", *(f"w{i}" for i in range(WRITERS))])
    for visit in range(0, visits, 7):
        np.testing.assert_array_equal(reader.get("x", visit=visit), np.full(16, visit, dtype="i4"))

"""verify finds datasets the registry holds twice behind the unique index's back."""

from __future__ import annotations

import sqlite3
import uuid

from compstore import Butler
from compstore.verify import DUPLICATE


def test_a_duplicated_dataset_row_is_reported(butler, sky):
    exposure, _ = sky(1, 0, size=64)
    ref = butler.put(exposure, "calexp", visit=1, detector=0)
    butler.registry.close()
    db = sqlite3.connect(butler.root / "registry.sqlite3")
    db.execute("DROP INDEX ux_dataset_type_key_run")  # what a damaged or edited file may lack
    columns = [r[1] for r in db.execute("PRAGMA table_info(dataset)")]
    other = uuid.uuid4()
    values = ", ".join("?" if c == "id" else c for c in columns)
    db.execute(f"INSERT INTO dataset ({', '.join(columns)}) SELECT {values} FROM dataset",
               (other.hex,))
    db.commit()
    db.close()
    report = Butler(butler.root).verify()
    problems = [p for p in report.problems if p.problem == DUPLICATE]
    assert len(problems) == 1, str(report)
    assert str(ref.id) in problems[0].message and str(other) in problems[0].message
    assert not report.ok


def test_a_healthy_registry_has_no_duplicates(butler, sky):
    exposure, _ = sky(1, 0, size=64)
    butler.put(exposure, "calexp", visit=1, detector=0)
    butler.put(exposure, "calexp", visit=1, detector=1)
    assert butler.registry.duplicate_datasets() == [] and butler.verify().ok

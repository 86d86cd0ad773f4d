"""A Hypothesis state machine checking insert/find/remove/query against a dict model."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from compstore.errors import ConflictingDatasetError
from compstore.registry import CollectionType, DatasetRef, Registry

RUNS = ["run/a", "run/b", "run/c"]
visits = st.integers(min_value=0, max_value=4)
detectors = st.integers(min_value=0, max_value=2)
runs = st.sampled_from(RUNS)
chains = st.lists(runs, min_size=1, max_size=4)


class RegistryMachine(RuleBasedStateMachine):
    """Model: (run, visit, detector) -> (id, manifest)."""

    refs = Bundle("refs")

    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        self.registry = Registry.create(Path(self._tmp.name) / "r.sqlite3")
        self.registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
        for run in RUNS:
            self.registry.register_run(run)
        self.registry.register_collection("chain", CollectionType.CHAINED)
        self.model: dict[tuple[str, int, int], tuple[uuid.UUID, str]] = {}
        self.counter = 0

    def teardown(self) -> None:
        self.registry.close()
        self._tmp.cleanup()

    @rule(target=refs, run=runs, visit=visits, detector=detectors)
    def insert(self, run: str, visit: int, detector: int) -> DatasetRef | None:
        self.counter += 1
        manifest = f"m{self.counter}"
        key = (run, visit, detector)
        try:
            ref = self.registry.insert_dataset(
                "calexp", {"visit": visit, "detector": detector}, run, manifest)
        except ConflictingDatasetError:
            assert key in self.model
            return None
        assert key not in self.model
        self.model[key] = (ref.id, manifest)
        return ref

    @rule(run=runs, visit=visits, detectors=st.sets(detectors, min_size=1))
    def insert_many(self, run: str, visit: int, detectors: set[int]) -> None:
        data_ids = [{"visit": visit, "detector": d} for d in sorted(detectors)]
        manifests = [f"bulk{self.counter}-{d}" for d in sorted(detectors)]
        self.counter += 1
        clash = any((run, visit, d) in self.model for d in detectors)
        try:
            refs = self.registry.insert_datasets("calexp", data_ids, run, manifests)
        except ConflictingDatasetError:
            assert clash
            return
        assert not clash
        for ref in refs:
            self.model[(run, ref.data_id["visit"], ref.data_id["detector"])] = (ref.id, ref.manifest)

    @rule(ref=refs)
    def remove(self, ref: DatasetRef | None) -> None:
        if ref is None:
            return
        key = (ref.run, ref.data_id["visit"], ref.data_id["detector"])
        present = self.model.get(key, (None,))[0] == ref.id
        assert self.registry.remove_datasets([ref]) == (1 if present else 0)
        if present:
            del self.model[key]

    @rule(order=chains)
    def set_chain(self, order: list[str]) -> None:
        self.registry.set_chain("chain", order)

    @rule(visit=visits, detector=detectors, order=chains)
    def find(self, visit: int, detector: int, order: list[str]) -> None:
        found = self.registry.find_dataset("calexp", {"visit": visit, "detector": detector}, order)
        expected = next(
            (self.model[(run, visit, detector)] for run in order
             if (run, visit, detector) in self.model),
            None,
        )
        assert (found.id, found.manifest) == expected if found else expected is None

    @rule(visit=visits)
    def query_chain(self, visit: int) -> None:
        order = list(dict.fromkeys(self.registry.get_chain("chain")))
        got = {
            (r.run, r.data_id["detector"]): r.id
            for r in self.registry.query_datasets(
                "calexp", "visit = :v", collections="chain", bind={"v": visit}, find_first=True)
        }
        expected = {}
        for detector in range(3):
            for run in order:
                if (run, visit, detector) in self.model:
                    expected[(run, detector)] = self.model[(run, visit, detector)][0]
                    break
        assert got == expected

    @invariant()
    def counts_and_manifests_agree(self) -> None:
        assert self.registry.count_datasets() == len(self.model)
        assert self.registry.manifests() == {m for _, m in self.model.values()}


RegistryMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
TestRegistryMachine = RegistryMachine.TestCase

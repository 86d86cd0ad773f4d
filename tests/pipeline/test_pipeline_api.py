"""The public surface of compstore.pipeline is exactly ``__all__``, and the documented shape imports."""

from __future__ import annotations

import compstore.pipeline

EXPECTED = {
    "ExecutionReport", "Input", "Output", "Pipeline", "PredictedRef", "Quantum", "QuantumGraph",
    "QuantumResult", "Task", "TaskConfig", "TaskDef", "build_graph", "execute", "get_task_class",
    "project", "register_task", "registered_tasks", "run_quantum",
}  # fmt: skip


def test_all_is_pinned():
    assert set(compstore.pipeline.__all__) == EXPECTED
    for name in compstore.pipeline.__all__:
        assert getattr(compstore.pipeline, name) is not None


def test_documented_import_line():
    from compstore.pipeline import Input, Output, Pipeline, Task, execute  # noqa: F401

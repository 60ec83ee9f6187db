"""The short fault run inside `make test` (the full one is `make faults`)."""

from __future__ import annotations

import pytest

from tests import faults

pytestmark = pytest.mark.integration


def test_the_stack_loses_nothing_under_killed_renders_and_restarted_servers() -> None:
    outcome = faults.run(
        faults.FaultRun(
            render_kills=5, redis_restarts=1, postgres_restarts=1, max_active_jobs=4,
            settle_seconds=180,
        )
    )

    print(outcome.report.table())
    assert outcome.report.problems == []
    assert outcome.injected == {"render": 5, "redis": 1, "postgres": 1}
    assert outcome.report.figures["jobs created"] >= 2
    assert outcome.report.figures["lost"] == 0

"""schemathesis against the running API: no 5xx and no answer that breaks /openapi.json.

The API runs as its own process on the test broker (the projector included);
schemathesis loads the document over HTTP with the admin token and calls every
operation with generated valid and invalid input. The number of examples is
bounded so the run stays around two minutes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streams.config import Settings
from tests.support.harness import Pipeline

MAX_EXAMPLES = 25
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


@pytest.mark.timeout(360)
def test_no_server_error_and_no_spec_violation(
    settings: Settings, pipeline: Pipeline, artifacts_dir: Path
) -> None:
    # The processor too, so that `?wait=...` calls end when their command is applied
    # rather than at the wait bound.
    pipeline.start_ready("processor", "api")
    base = f"http://127.0.0.1:{settings.api_port}"
    report = artifacts_dir / "schemathesis"
    log_path = artifacts_dir / "schemathesis.log"
    with log_path.open("w") as log:
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{base}/openapi.json",
                "--header",
                f"Authorization: Bearer {settings.api_token}",
                "--checks",
                CHECKS,
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                "20261123",
                # One worker: with two, hypothesis' lambda-source cache raced inside
                # schemathesis ("AST constructor recursion depth mismatch").
                "--workers",
                "1",
                "--request-timeout",
                "20",  # above the longest wait the API allows (10 s)
                # The stateful phase chains calls (create, then pause/resume/...)
                # that the processor applies, so `wait` calls end when applied.
                "--phases",
                "examples,coverage,fuzzing,stateful",
                # A WebSocket is not an HTTP request/response pair to fuzz.
                "--exclude-path",
                "/v1/stream",
                "--no-color",
                "--report",
                "junit",
                "--report-dir",
                str(report),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=artifacts_dir,  # its .schemathesis/ cache goes there, not into the tree
            # About 1-2 min on a quiet 2-core machine; a loaded one needs more.
            timeout=330,
        )
    assert run.returncode == 0, log_path.read_text()[-8000:]

"""The container definition (Dockerfile) of the Python service: there is no Docker daemon here, so what can
be checked without building it is: everything it copies exists, the commands it runs exist, and its health
check (run as written, with the image's Python) passes against the real service and fails when the service
cannot reach its database or is not there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tests.worker_harness import RING

from trove.config import PROJECT_ROOT
from trove.db.cluster import free_port
from trove.http.app import create_app
from trove.simulators.serve import BackgroundServer

DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()


def instruction(name: str) -> str:
    """The instruction's arguments, continuation lines joined."""
    joined = DOCKERFILE.replace("\\\n", " ")
    found = re.search(rf"^{name}\s+(.*)$", joined, re.MULTILINE)
    assert found, f"the Dockerfile has no {name}"
    return found[1]


def health_check(port: int) -> int:
    command = json.loads(re.sub(r"^.*?CMD\s+", "", instruction("HEALTHCHECK")))
    assert command[0] == "python"
    env = {**os.environ, "TROVE_HTTP_PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, check=False).returncode


def test_what_the_image_copies_exists_and_its_command_is_the_service() -> None:
    for line in re.findall(r"^COPY\s+(.*)$", DOCKERFILE, re.MULTILINE):
        for source in line.split()[:-1]:
            assert (PROJECT_ROOT / source).exists(), source
    assert json.loads(instruction("CMD"))[:2] == ["trove", "serve"]
    assert "--host" in instruction("CMD")  # in a container, the published port must reach it
    assert re.search(r"^USER\s+(?!root)\w+", DOCKERFILE, re.MULTILINE), "the service does not run as root"


def test_the_health_check_passes_on_a_healthy_service_and_fails_otherwise(db_url: str) -> None:
    with BackgroundServer(create_app(db_url, RING), free_port()) as service:
        assert health_check(int(service.url.rsplit(":", 1)[1])) == 0
    with BackgroundServer(create_app(f"postgresql://127.0.0.1:{free_port()}/nothing", RING), free_port()) as down:
        assert health_check(int(down.url.rsplit(":", 1)[1])) != 0  # /health answers 503
    assert health_check(free_port()) != 0  # nothing listening

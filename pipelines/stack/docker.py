"""``CHANGELAKE_RUNTIME=docker`` (or ``changelake up --runtime docker``): the same stack from
official images via docker compose, used as external components.

``docker compose up -d --wait postgres kafka connect`` starts the three services; changelake
then installs the late-table trigger (the compose database's app user is its superuser) and
runs the external-mode ``up`` (preflight ``check``, own schema, publication, connector on
Connect's REST API): one code path for a user's own stack and for compose. The compose file's
``register`` one-shot (profile ``register``) is for running compose by hand, without
changelake. Without a Docker engine it fails with one clear line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

from pipelines.config import REPO_ROOT, Settings
from pipelines.stack.connector_config import template_env
from pipelines.stack.procs import StackError

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SERVICES = ("postgres", "kafka", "connect")  # not `register`: changelake registers itself


def compose_env(settings: Settings) -> dict[str, str]:
    """Environment for compose: the template values, JSON-escaped where envsubst needs it."""
    env = template_env(settings)
    # envsubst pastes text into JSON: the regexes' backslashes must be escaped there
    for key in (
        "CHANGELAKE_TABLE_INCLUDE_LIST",
        "CHANGELAKE_OUTBOX_TOPIC_REGEX",
        "CHANGELAKE_OUTBOX_TOMBSTONE_TOPIC_REGEX",
        "CHANGELAKE_EVENT_TOPIC_REGEX",
    ):
        env[key] = env[key].replace("\\", "\\\\")
    env["CHANGELAKE_PG_PORT"] = str(settings.pg_port)  # the host side of the compose mapping
    env["CHANGELAKE_PG_PASSWORD"] = settings.pg_password
    env["CHANGELAKE_PG_USER"] = settings.pg_user
    env["CHANGELAKE_KAFKA_PORT"] = str(settings.kafka_port)
    env["CHANGELAKE_CONNECT_PORT"] = str(settings.connect_port)
    return env


def up_docker(
    settings: Settings, *, timeout: float = 180, progress: Callable[[str], None] | None = None
) -> None:
    """Start the compose services, then ``up`` against them as external components."""
    if settings.runtime != "docker":
        settings = Settings(**(settings.model_dump() | {"runtime": "docker"}))
    docker = shutil.which("docker")
    if docker is None:
        raise StackError(
            "docker runtime: `docker` not found; install Docker with the compose plugin, "
            "or use the default native runtime (changelake up)"
        )
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)  # noqa: S603
    if probe.returncode != 0:
        raise StackError(
            "docker runtime: the `docker compose` plugin is missing; install "
            "docker-compose-plugin, or use the default native runtime (changelake up)"
        )
    engine = subprocess.run(
        [docker, "info", "--format", "{{.ServerVersion}}"],  # noqa: S603
        capture_output=True,
        text=True,
    )
    if engine.returncode != 0:
        raise StackError(
            "docker runtime: no Docker engine is reachable (`docker info` failed); "
            "start one, or use the default native runtime (changelake up)"
        )
    if progress:
        progress(f"docker compose -f {COMPOSE_FILE} up -d")
    wait = ["--wait", "--wait-timeout", str(int(timeout))]
    _compose(docker, settings, ["up", "-d", *wait, *SERVICES], "(is a Docker engine running?)")
    from pipelines.stack import late_tables, lifecycle, postgres

    with postgres.app_connect(settings) as conn:  # compose's app user is its superuser
        for stmt in postgres.heartbeat_ddl():  # the trigger's list lives in changelake's schema
            conn.execute(stmt)
        late_tables.install(conn, settings)
    lifecycle.up(settings, timeout=timeout, progress=progress)


def down_docker(settings: Settings, *, purge: bool = False) -> None:
    """``docker compose stop`` (state kept in the compose volumes); ``purge``: ``down -v``,
    which removes the containers and their volumes (database, topics) too."""
    docker = shutil.which("docker")
    if docker is None:
        raise StackError("docker runtime: `docker` not found; nothing to stop")
    _compose(docker, settings, ["down", "-v"] if purge else ["stop"])


def _compose(docker: str, settings: Settings, args: list[str], hint: str = "") -> None:
    """``docker compose -f COMPOSE_FILE ARGS`` with the settings exported; fails in one line."""
    res = subprocess.run(  # noqa: S603
        [docker, "compose", "-f", str(COMPOSE_FILE), *args],
        env=os.environ | compose_env(settings),
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise StackError(
            f"docker runtime: `docker compose {args[0]}` failed {hint}: " + " | ".join(tail)
        )

"""The managed S3 endpoint: s3proxy (an S3 API server) over a folder under the home.

Runs only for an s3:// Iceberg warehouse with ``CHANGELAKE_S3_MODE=managed``
(``Settings.s3_managed``): jclouds' filesystem provider keeps each bucket as a folder of
``Layout.s3_data``; the warehouse's bucket is created before the start. It listens on
``BIND_HOST:S3_PORT`` and accepts AWS v2/v4 signatures from the configured access key id and
secret, which live only in its 0600 properties file (never on the command line).
``s3proxy.ignore-unknown-headers`` lets newer SDKs' extra headers (checksums) through.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from pipelines.config import Settings
from pipelines.stack import jvm
from pipelines.stack.layout import S3PROXY_JARS, Layout
from pipelines.stack.procs import (
    StackFatal,
    live_pid,
    log_tail,
    recorded_alive,
    spawn,
    terminate,
    wait_until,
)

MAIN = "org.gaul.s3proxy.Main"
NAME = "s3proxy"

LOGBACK = """\
<!-- written by `changelake up`: s3proxy logs at INFO (its default is DEBUG, every request) -->
<configuration>
  <appender name="out" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>[%d{ISO8601}] %level %msg \\(%logger{0}\\)%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="out"/></root>
</configuration>
"""


def properties_path(layout: Layout) -> str:
    return str(layout.conf / "s3proxy.properties")


def marker(layout: Layout) -> str:
    return properties_path(layout)


def pid(layout: Layout) -> int | None:
    return live_pid(layout.pid_file(NAME), marker(layout))


def _escape(value: str) -> str:
    """A .properties value: backslashes and line breaks escaped, nothing else interpreted."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def server_properties(settings: Settings, layout: Layout) -> str:
    secret = settings.s3_secret_access_key.get_secret_value()
    return "\n".join(
        [
            "# written by `changelake up` on every start; edit Settings (CHANGELAKE_S3_*) instead",
            f"s3proxy.endpoint=http://{settings.bind_host}:{int(settings.s3_port)}",
            "s3proxy.authorization=aws-v2-or-v4",
            f"s3proxy.identity={_escape(settings.s3_access_key_id)}",
            f"s3proxy.credential={_escape(secret)}",
            "s3proxy.ignore-unknown-headers=true",
            "jclouds.provider=filesystem",
            f"jclouds.filesystem.basedir={_escape(str(layout.s3_data))}",
            "",
        ]
    )


def write_config(settings: Settings, layout: Layout) -> None:
    layout.conf.mkdir(parents=True, exist_ok=True)
    path = layout.conf / "s3proxy.properties"
    path.touch(mode=0o600)  # holds the secret access key
    path.chmod(0o600)
    path.write_text(server_properties(settings, layout))
    (layout.conf / "s3proxy-logback.xml").write_text(LOGBACK)


def ensure_bucket(settings: Settings, layout: Layout) -> None:
    """The warehouse's bucket: a folder of the filesystem provider (name validated by Settings)."""
    (layout.s3_data / settings.s3_bucket).mkdir(parents=True, exist_ok=True)


def start(layout: Layout) -> None:
    if pid(layout):
        return
    argv = jvm.java_argv(
        layout,
        S3PROXY_JARS,
        MAIN,
        "--properties",
        properties_path(layout),
        jvm_options=[f"-Dlogback.configurationFile={layout.conf / 's3proxy-logback.xml'}"],
    )
    spawn(argv, log=layout.log_file(NAME), pid_file=layout.pid_file(NAME))


def stop(layout: Layout) -> None:
    p = pid(layout)
    if p:
        terminate(p, marker(layout), timeout=30)
    layout.pid_file(NAME).unlink(missing_ok=True)


def healthy(settings: Settings) -> bool:
    """The endpoint answers S3 requests (an anonymous request is refused with 403)."""
    try:
        with urllib.request.urlopen(settings.s3_endpoint_url + "/", timeout=3):  # noqa: S310
            return True
    except urllib.error.HTTPError as exc:
        return exc.code in (400, 403)


def wait_healthy(settings: Settings, layout: Layout, timeout: float) -> None:
    def check() -> bool:
        if not recorded_alive(layout.pid_file(NAME)):
            raise StackFatal(
                f"s3proxy exited during start; see {layout.log_file(NAME)}\n"
                + log_tail(layout.log_file(NAME))
            )
        return healthy(settings)

    wait_until(check, timeout=timeout, what=NAME, log=layout.log_file(NAME), interval=0.3)

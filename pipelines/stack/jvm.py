"""The JVM side: find ``java`` and ``mvn``, resolve the jars once, build java command lines.

Jars come from Maven Central through the poms in ``connectors/runtime/<name>/pom.xml``; each
set goes into its own directory (separate classpaths per JVM, and Debezium as a Connect plugin
directory without the Kafka/Jackson jars the worker already ships). A marker file holding the
pom's hash makes a second ``up`` skip Maven entirely.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from pipelines.stack.layout import CONNECTORS_DIR, JAR_SETS, Layout
from pipelines.stack.procs import StackError, run

HEAPS = {"kafka": "512m", "connect": "768m"}


def require_tool(name: str, package: str) -> str:
    """Path of ``name`` or one clear line saying what to install."""
    path = shutil.which(name)
    if path is None:
        raise StackError(
            f"`{name}` not found on PATH: install it (Debian: apt-get install {package})"
        )
    return path


def pom(name: str) -> Path:
    return CONNECTORS_DIR / "runtime" / name / "pom.xml"


def _pom_hash(name: str) -> str:
    return hashlib.sha256(pom(name).read_bytes()).hexdigest()


def jars_resolved(layout: Layout, name: str) -> bool:
    marker = layout.jar_marker(name)
    return marker.exists() and marker.read_text().strip() == _pom_hash(name)


def resolve_jars(
    layout: Layout,
    progress: Callable[[str], None] | None = None,
    names: Sequence[str] = JAR_SETS,
) -> list[str]:
    """Copy each jar set of ``names`` from Maven (cached in ~/.m2); returns those resolved now.

    A file lock serialises resolution, since test sessions share one jar cache."""
    if all(jars_resolved(layout, name) for name in names):
        return []
    layout.jars.mkdir(parents=True, exist_ok=True)
    with open(layout.jars / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _resolve_locked(layout, progress, names)


def _resolve_locked(
    layout: Layout, progress: Callable[[str], None] | None, names: Sequence[str]
) -> list[str]:
    done = []
    for name in names:
        if jars_resolved(layout, name):
            continue
        mvn = require_tool("mvn", "maven")
        require_tool("java", "openjdk-17-jre-headless")
        if progress:
            progress(f"resolving {name} jars with Maven")
        target = layout.jar_dir(name)
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom(name)),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={tmp}",
                "-DincludeScope=runtime",
            ],
            what=f"Maven resolution of the {name} jars",
            log=layout.logs / "maven.log",
        )
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        layout.jar_marker(name).write_text(_pom_hash(name) + "\n")
        done.append(name)
    return done


def java_argv(
    layout: Layout,
    component: str,
    main: str,
    *args: str,
    heap: str | None = None,
    jvm_options: Sequence[str] = (),
) -> list[str]:
    """A java command line for one of our JVMs with its own classpath and log4j2 config."""
    java = require_tool("java", "openjdk-17-jre-headless")
    jar_set = "kafka" if component in ("kafka", "storage") else component
    return [
        java,
        f"-Xmx{heap or HEAPS.get(component, '256m')}",
        "-Xms64m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",  # C1 only: far less CPU at start on a shared 2-core box
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={layout.conf / 'log4j2.properties'}",
        f"-Dchangelake.log.file={layout.log_file(component)}",
        f"-Dkafka.logs.dir={layout.logs}",
        *jvm_options,
        "-cp",
        f"{layout.jar_dir(jar_set)}/*",
        main,
        *args,
    ]


LOG4J2 = """\
# written by `changelake up`: one rolling file per JVM (path from -Dchangelake.log.file)
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:changelake.log.file}
appender.file.filePattern = ${sys:changelake.log.file}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d{ISO8601}] %p %m (%c{1})%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafkaclients.name = org.apache.kafka.clients
logger.kafkaclients.level = WARN
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
"""


def write_log4j2(layout: Layout) -> None:
    layout.conf.mkdir(parents=True, exist_ok=True)
    (layout.conf / "log4j2.properties").write_text(LOG4J2)

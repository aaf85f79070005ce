"""A local Apache Airflow: an ``AIRFLOW_HOME`` with a SQLite database and a
DAG folder (:class:`AirflowHome`), its CLI (``airflow dags test`` ...), and
its API server as a local process (:class:`AirflowApiServer`).

Airflow runs from its own venv (``make tools``, ``tools/airflow/provision.sh``:
Airflow's pins conflict with Beam's), under :func:`airflow_venv`. The API
server uses Airflow's simple auth manager with one admin user whose
password is written to a file in the home (never printed).

Example::

    home = AirflowHome.create(tmp_path)
    home.add_dag(AirflowDag(ScheduledRun("fraud", "direct", [...])).render())
    home.cli("dags", "test", "hybridflow_fraud")
    with AirflowApiServer(home) as server:
        ...  # server.url, server.username, server.password
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import subprocess
from typing import Mapping

from hybridflow._pins import AIRFLOW_VERSION
from hybridflow.testing.services._process import (
    ServiceProcess,
    ServiceUnavailable,
    free_port,
    http_ok,
    tools_home,
    wait_for,
)

__all__ = ["airflow_venv", "AirflowHome", "AirflowApiServer"]


def airflow_venv() -> pathlib.Path:
    """The venv ``make tools`` installed Airflow into."""
    venv = tools_home() / "airflow" / f"venv-{AIRFLOW_VERSION}"
    if not (venv / ".provisioned").is_file():
        raise ServiceUnavailable(f"Airflow {AIRFLOW_VERSION} is not provisioned ({venv} missing): run `make tools`")
    return venv


class AirflowHome:
    """An ``AIRFLOW_HOME``: SQLite database, DAG folder, no example DAGs."""

    USER = "hybridflow"

    def __init__(self, path: pathlib.Path):
        self.path = pathlib.Path(path)
        self.dags = self.path / "dags"
        self.venv = airflow_venv()
        self.password_file = self.path / "passwords.json"

    @classmethod
    def create(cls, path) -> AirflowHome:
        """A new home at ``path`` with its database migrated."""
        home = cls(path)
        home.dags.mkdir(parents=True, exist_ok=True)
        home.password_file.write_text(json.dumps({cls.USER: secrets.token_urlsafe(16)}))
        home.cli("db", "migrate", timeout=600)
        return home

    @property
    def password(self) -> str:
        return json.loads(self.password_file.read_text())[self.USER]

    def env(self) -> Mapping[str, str]:
        return {
            **os.environ,
            "AIRFLOW_HOME": str(self.path),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.path / 'airflow.db'}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_file),
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def add_dag(self, text: str, name: str = "dag.py") -> pathlib.Path:
        path = self.dags / name
        path.write_text(text, encoding="utf-8")
        return path

    def cli(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        """Runs ``airflow ARGS`` in this home; raises with its output if it fails and ``check``."""
        done = subprocess.run(
            [str(self.venv / "bin" / "airflow"), *args], env=self.env(), cwd=self.path, capture_output=True,
            text=True, timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                               f"{done.stderr[-3000:]}")
        return done

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """``{task_id: state}`` of one DAG run."""
        done = self.cli("tasks", "states-for-dag-run", dag_id, run_id, "--output", "json")
        return {row["task_id"]: row["state"] for row in json.loads(_json_part(done.stdout))}

    def runs(self, dag_id: str) -> list[dict]:
        done = self.cli("dags", "list-runs", dag_id, "--output", "json")
        return json.loads(_json_part(done.stdout))


def _json_part(text: str) -> str:
    """The JSON document in the CLI's stdout: its last line (Airflow prints log lines before it)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "[]"


class AirflowApiServer(ServiceProcess):
    """``airflow api-server`` of an :class:`AirflowHome` on a free loopback port."""

    name = "airflow"
    start_timeout = 240.0

    def __init__(self, home: AirflowHome):
        super().__init__()
        self.home = home
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def username(self) -> str:
        return AirflowHome.USER

    @property
    def password(self) -> str:
        return self.home.password

    def _start(self) -> None:
        airflow = self.home.venv / "bin" / "airflow"
        proc = self._spawn([airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.port)],
                           "api-server.log", env=self.home.env())
        wait_for(lambda: http_ok(f"{self.url}/api/v2/monitor/health"), f"Airflow API server on {self.url}",
                 self.start_timeout, proc, self.log_path("api-server.log"))

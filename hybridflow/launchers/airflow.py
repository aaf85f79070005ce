"""AirflowLauncher: trigger a DAG run through Airflow's REST API.

The event-driven half of orchestration: an alert on the stream triggers the
batch DAG that ``hybridflow airflow-dag`` wrote (or any DAG), on Airflow 3
(``/api/v2``, a JWT from ``/auth/token``) or Cloud Composer. Each launch is
one ``POST /api/v2/dags/DAG/dagRuns`` with ``dag_run_id =
hybridflow-<launch id>``; Airflow refuses a second run of the same id (409),
so a retried or replayed launch does not run twice: it is recorded as
``submitted`` with ``detail`` saying the run already existed.

Credentials are named, never given: ``username_env`` / ``password_env`` (or
``token_env`` for a ready bearer token) are environment variables read on the
worker when it launches; their values are not stored in the launcher, the
pipeline or the :class:`~hybridflow.launchers.LaunchRecord`.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Mapping, Optional

from hybridflow.errors import InvalidOptionError
from hybridflow.launchers import EXAMPLE_REQUEST, Launcher, LaunchRequest, LaunchResult, LaunchStatus, fill

__all__ = ["AirflowLauncher"]


class AirflowLauncher(Launcher):
    """Triggers a run of an Airflow DAG for each launch.

    Args:
      dag_id: the DAG to trigger (recorded as the launch's ``pipeline``).
      url: the Airflow API server, e.g. ``http://airflow:8080`` (Composer:
        the environment's Airflow web server URL).
      conf: the DAG run's ``conf``; values may use ``{launch_id}``, ``{rule}``,
        ``{key}``, ``{window_start}`` ... (checked now).
      username_env, password_env: environment variables holding the Airflow
        user and password, exchanged for a token at ``/auth/token``.
      token_env: an environment variable holding a bearer token instead
        (Composer: an OAuth access token).
      timeout: seconds for each HTTP request.
      dry_run: build and record the request without sending it.

    Example::

        AirflowLauncher("hybridflow_fraud", "http://airflow:8080",
                        conf={"reason": "{rule} {key}", "window_end": "{window_end}"})
    """

    backend = "airflow"

    def __init__(
        self,
        dag_id: str,
        url: str,
        conf: Optional[Mapping[str, str]] = None,
        username_env: str = "AIRFLOW_USERNAME",
        password_env: str = "AIRFLOW_PASSWORD",
        token_env: Optional[str] = None,
        timeout: float = 30.0,
        dry_run: bool = False,
    ):
        super().__init__(dag_id, dry_run=dry_run, timeout=timeout)
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.username or parsed.password:
            raise InvalidOptionError(
                f"AirflowLauncher url={url!r}: give the API server as http(s)://HOST:PORT, "
                "credentials in environment variables (username_env/password_env or token_env)"
            )
        self.url = url.rstrip("/")
        self.conf = dict(conf or {})
        self.username_env, self.password_env, self.token_env = username_env, password_env, token_env
        self._conf(EXAMPLE_REQUEST)  # checks the placeholders now

    def _conf(self, request: LaunchRequest) -> dict:
        return {name: fill(str(value), request) for name, value in self.conf.items()}

    def run_id(self, request: LaunchRequest) -> str:
        return f"hybridflow-{request.launch_id}"

    def endpoint(self) -> str:
        return f"{self.url}/api/v2/dags/{urllib.parse.quote(self.pipeline, safe='')}/dagRuns"

    def command(self, request: LaunchRequest) -> list[str]:
        return ["POST", self.endpoint(), f"dag_run_id={self.run_id(request)}"]

    def job(self, request: LaunchRequest, stdout: str) -> str:
        return f"{self.pipeline}/{self.run_id(request)}"

    def _token(self, session) -> str:
        if self.token_env:
            token = os.environ.get(self.token_env)
            if not token:
                raise RuntimeError(f"environment variable {self.token_env} (the Airflow token) is not set")
            return token
        username, password = os.environ.get(self.username_env), os.environ.get(self.password_env)
        if not username or password is None:
            raise RuntimeError(
                f"environment variables {self.username_env} and {self.password_env} (the Airflow user) are not set"
            )
        answer = session.post(f"{self.url}/auth/token", json={"username": username, "password": password},
                              timeout=self.timeout)
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"POST {self.url}/auth/token: HTTP {answer.status_code} (check the Airflow user)")
        return answer.json()["access_token"]

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """POSTs the DAG run; never raises: failures become a FAILED result."""
        import requests

        line = " ".join(self.command(request))
        job = self.job(request, "")
        if self.dry_run:
            return LaunchResult(LaunchStatus.DRY_RUN, line, job=job, detail="not run (dry_run)")
        body = {"dag_run_id": self.run_id(request), "logical_date": None, "conf": self._conf(request),
                "note": f"hybridflow: {request.rule} {request.key}: {request.reason}"[:1000]}
        try:
            with requests.Session() as session:
                token = self._token(session)
                answer = session.post(self.endpoint(), json=body, timeout=self.timeout,
                                      headers={"Authorization": f"Bearer {token}"})
        except (requests.RequestException, RuntimeError, KeyError, ValueError) as exc:
            return LaunchResult(LaunchStatus.FAILED, line, job=job, detail=f"{type(exc).__name__}: {exc}"[:500])
        if answer.status_code == 409:
            return LaunchResult(LaunchStatus.SUBMITTED, line, exit_code=0, job=job,
                                detail=f"DAG run {self.run_id(request)} already exists (not triggered again)")
        if answer.status_code not in (200, 201):
            return LaunchResult(LaunchStatus.FAILED, line, job=job,
                                detail=f"HTTP {answer.status_code}: {answer.text.strip()[:400]}")
        state = answer.json().get("state", "")
        return LaunchResult(LaunchStatus.SUBMITTED, line, exit_code=0, job=job,
                            detail=f"DAG run {self.run_id(request)} {state}".strip())

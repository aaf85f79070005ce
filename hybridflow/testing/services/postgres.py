"""A throwaway PostgreSQL cluster from Debian's ``postgresql`` package.

:class:`PostgresServer` runs ``initdb`` and ``postgres`` on
``127.0.0.1:<free port>`` with trust authentication and durability off (test
data only), and creates the database ``hybridflow``. One role is the
exception: :attr:`PostgresServer.PASSWORD_ROLE` must log in with its
password (``scram-sha-256``), for tests of credentials passed by reference
(:meth:`PostgresServer.password_role` creates it). PostgreSQL refuses to run
as root, so as root the server runs as the ``postgres`` system user (Python's
own ``Popen(user=..., group=...)``) in a directory handed to that user.
"""

from __future__ import annotations

import glob
import os
import pathlib
import pwd
import shutil
import subprocess
from typing import Optional

from hybridflow.testing.services._process import ServiceProcess, ServiceUnavailable, free_port, wait_for

__all__ = ["PostgresServer"]


def _pg_bin() -> Optional[pathlib.Path]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return pathlib.Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return pathlib.Path(initdb).parent if initdb else None


class PostgresServer(ServiceProcess):
    """PostgreSQL on ``127.0.0.1:<free port>``; ``url`` is ``postgresql://postgres@127.0.0.1:P/hybridflow``."""

    name = "postgres"
    start_timeout = 60.0
    #: the one role that must give its password (the others are trusted)
    PASSWORD_ROLE = "hf_password_user"

    def __init__(self, database: str = "hybridflow", user: str = "postgres"):
        super().__init__()
        self.database = database
        self.user = user
        self.port = free_port()
        self._run_as: dict = {}

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={self.database} user={self.user}"

    def _start(self) -> None:
        bin_dir = _pg_bin()
        if bin_dir is None:
            raise ServiceUnavailable("PostgreSQL is not installed (no initdb): run `make tools-services`")
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceUnavailable("running as root, but there is no 'postgres' user to run the server as") from None
            self._run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            os.chown(self.workdir, pw.pw_uid, pw.pw_gid)
        data, sockets = self.workdir / "data", self.workdir / "sock"
        sockets.mkdir()
        if self._run_as:
            os.chown(sockets, self._run_as["user"], self._run_as["group"])
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C", "LC_ALL": "C"}
        initdb = subprocess.run(
            [bin_dir / "initdb", "-D", data, "-U", self.user, "-A", "trust", "-E", "UTF8", "--locale=C",
             "--no-sync", "--no-instructions"],
            capture_output=True, text=True, env=env, cwd=self.workdir, **self._run_as,
        )
        if initdb.returncode != 0:
            raise ServiceUnavailable(f"initdb failed: {initdb.stderr.strip()}")
        hba = data / "pg_hba.conf"
        hba.write_text(f"host all {self.PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        proc = self._spawn(
            [bin_dir / "postgres", "-D", data, "-p", str(self.port), "-h", "127.0.0.1", "-k", sockets,
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "shared_buffers=32MB", "-c", "max_connections=50"],
            "postgres.log", env=env, **self._run_as,
        )

        def ready() -> bool:
            return subprocess.run([bin_dir / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode == 0

        wait_for(ready, f"PostgreSQL on 127.0.0.1:{self.port}", self.start_timeout, proc, self.log_path("postgres.log"))
        created = subprocess.run([bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                                  self.database], capture_output=True, text=True, env=env)
        if created.returncode != 0:
            raise ServiceUnavailable(f"createdb failed: {created.stderr.strip()}")

    def connect(self):
        """A psycopg 3 connection (autocommit) to the test database."""
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True)

    def password_role(self, password: str, schema: str) -> str:
        """Creates (or resets) :attr:`PASSWORD_ROLE` with ``password``, allowed to
        read ``schema``; returns its URL, without the password."""
        from psycopg import sql

        role = sql.Identifier(self.PASSWORD_ROLE)
        with self.connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.PASSWORD_ROLE,)).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(verb, role, sql.Literal(password)))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(sql.Identifier(schema), role))
        return f"postgresql://{self.PASSWORD_ROLE}@127.0.0.1:{self.port}/{self.database}"

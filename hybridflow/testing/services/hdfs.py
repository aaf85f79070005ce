"""A real HDFS as a local process: Hadoop's MiniDFSCluster (NameNode + DataNode in one JVM).

``tools/hdfs/provision.sh`` (``make tools-services``) puts the Hadoop jars and
``MiniHdfs`` (a small main in ``tools/hdfs/MiniHdfs.java``) under
``tools_home()/hdfs``. :class:`HdfsCluster` starts it on free loopback ports
with WebHDFS on; Beam's ``HadoopFileSystem`` talks WebHDFS, so
``pipeline_flags`` (``--hdfs_host``, ``--hdfs_port`` = the NameNode's HTTP
port, ``--hdfs_user``) point ``hdfs://`` paths at it.
"""

from __future__ import annotations

import getpass
import json
import pathlib
import urllib.request
from typing import Optional

from hybridflow.testing.services._process import ServiceProcess, free_port, tools_home, wait_for
from hybridflow.testing.services.kafka import _java

__all__ = ["HdfsCluster"]

_JVM = ["-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"]


class HdfsCluster(ServiceProcess):
    """MiniDFSCluster on ``127.0.0.1``: ``rpc_port`` (NameNode RPC), ``http_port`` (NameNode HTTP, WebHDFS)."""

    name = "hdfs"
    start_timeout = 180.0

    def __init__(self, home: Optional[pathlib.Path] = None):
        super().__init__()
        self.home = home or tools_home() / "hdfs"
        self.rpc_port = free_port()
        self.http_port = free_port()
        self.user = getpass.getuser()

    @property
    def webhdfs(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/webhdfs/v1"

    @property
    def pipeline_flags(self) -> list[str]:
        """Beam flags that point ``hdfs://`` at this cluster (WebHDFS on the NameNode's HTTP port)."""
        return ["--hdfs_host=127.0.0.1", f"--hdfs_port={self.http_port}", f"--hdfs_user={self.user}"]

    def _start(self) -> None:
        classes = self._require(self.home / "classes" / ".complete", "the HDFS minicluster").parent
        lib = self._require(self.home / "lib" / ".complete", "the HDFS minicluster jars").parent
        proc = self._spawn([_java(), *_JVM, "-cp", f"{classes}:{lib}/*", "MiniHdfs", str(self.rpc_port),
                            str(self.http_port), str(self.workdir / "dfs")], "hdfs.log")
        wait_for(lambda: "MiniHdfs ready" in self.log_path("hdfs.log").read_text(errors="replace"),
                 f"HDFS on 127.0.0.1:{self.rpc_port}", self.start_timeout, proc, self.log_path("hdfs.log"))

    def list(self, path: str = "/") -> list[str]:
        """The names in an HDFS directory (WebHDFS LISTSTATUS)."""
        with urllib.request.urlopen(f"{self.webhdfs}{path}?op=LISTSTATUS&user.name={self.user}", timeout=10) as r:
            return sorted(s["pathSuffix"] for s in json.load(r)["FileStatuses"]["FileStatus"])

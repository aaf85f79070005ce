"""Version pins shared by setup.py, the Makefile and the provisioning tools.

``BEAM_VERSION`` is the single place where the Apache Beam version is pinned:
the Python SDK, the Prism binary and the Java jars (Flink job server,
expansion services) built by ``tools/`` must all be of this version.
"""

# 2.70.0, not the newest 2.77.0: it is the newest Beam version for which every
# Java piece this package runs can be assembled from Maven modules served here
# (Flink 1.19 runner module + job service -> the Flink job server; Kafka IO +
# expansion service), and the Prism module is served by the Go proxy at the
# same tag. The Python SDK is pinned to the same version so all sides agree.
BEAM_VERSION = "2.70.0"

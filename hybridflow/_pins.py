"""Version pins shared by setup.py, the Makefile and the provisioning tools.

``BEAM_VERSION`` is the single place where the Apache Beam version is pinned:
the Python SDK, the Prism binary and the Java jars (Flink job server,
expansion services) built by ``tools/`` must all be of this version.
"""

BEAM_VERSION = "2.77.0"

"""``python -m hybridflow`` is the ``hybridflow`` command."""

import sys

from hybridflow.cli import main

if __name__ == "__main__":
    sys.exit(main())

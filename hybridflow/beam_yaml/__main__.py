"""``python -m hybridflow.beam_yaml`` prints the path of the providers file to include;
``--portable`` prints the providers in their portable form (``packages: [hybridflow==VERSION]``)."""

import sys

import yaml

from hybridflow.beam_yaml import PROVIDERS_FILE, portable_providers

if "--portable" in sys.argv[1:]:
    print(yaml.safe_dump({"providers": portable_providers()}, sort_keys=False), end="")
else:
    print(PROVIDERS_FILE)

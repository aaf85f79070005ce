"""``python -m hybridflow.beam_yaml`` prints the path of the providers file to include."""

from hybridflow.beam_yaml import PROVIDERS_FILE

print(PROVIDERS_FILE)

"""Per-key lookup handlers for :class:`~hybridflow.transforms.Enrich`.

A handler is a Beam :class:`~apache_beam.transforms.enrichment.EnrichmentSourceHandler`
that looks up one reference row per key, behind an in-process TTL cache
(:class:`LookupHandler`). One backend per module:

- :class:`InMemoryLookup` (:mod:`.memory`): rows given in Python; for tests and
  small static tables.
- :class:`BigtableLookup` (:mod:`.bigtable`): a Bigtable table, through Beam's
  ``BigTableEnrichmentHandler`` (needs ``pip install 'hybridflow[gcp]'``).
- :class:`DynamoDBLookup` (:mod:`.dynamodb`): a DynamoDB table, one ``GetItem``
  per key over boto3 (needs ``pip install 'hybridflow[aws]'``).
"""

from hybridflow.transforms.lookups.base import LookupHandler
from hybridflow.transforms.lookups.bigtable import BigtableLookup
from hybridflow.transforms.lookups.dynamodb import DynamoDBLookup
from hybridflow.transforms.lookups.memory import InMemoryLookup

__all__ = ["LookupHandler", "InMemoryLookup", "BigtableLookup", "DynamoDBLookup"]

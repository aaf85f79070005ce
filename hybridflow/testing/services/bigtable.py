"""The Bigtable emulator (``cloud.google.com/go/bigtable/cmd/emulator``), in memory.

:class:`BigtableEmulator` exports ``BIGTABLE_EMULATOR_HOST`` while it runs;
google-cloud-bigtable, Beam's ``WriteToBigTable`` and its
``BigTableEnrichmentHandler`` then talk to it without credentials. Any
instance id works.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from hybridflow.testing.services._process import LoopbackBinary

__all__ = ["BigtableEmulator", "PROJECT", "INSTANCE"]

PROJECT = "hybridflow-test"
INSTANCE = "test-instance"


class BigtableEmulator(LoopbackBinary):
    """The emulator on ``127.0.0.1:<free port>``; ``host`` is ``BIGTABLE_EMULATOR_HOST``."""

    name = "bigtable"
    binary = "bigtable-emulator"
    description = "the Bigtable emulator"

    @property
    def env(self) -> Mapping[str, str]:
        return {"BIGTABLE_EMULATOR_HOST": self.host}

    def _arguments(self) -> list[str]:
        return ["-host", "127.0.0.1", "-port", str(self.port)]

    def admin_table(self, table_id: str, project: str = PROJECT, instance: str = INSTANCE):
        """The admin ``google.cloud.bigtable.table.Table`` handle of ``table_id``."""
        import warnings

        from google.cloud import bigtable

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "Connecting to Bigtable emulator"
            client = bigtable.Client(project=project, admin=True)
        return client.instance(instance).table(table_id)

    def create_table(self, table_id: str, column_families: Sequence[str], project: str = PROJECT,
                     instance: str = INSTANCE):
        """Creates ``table_id`` with ``column_families`` (one version kept each)."""
        from google.cloud.bigtable import column_family

        table = self.admin_table(table_id, project, instance)
        table.create(column_families={cf: column_family.MaxVersionsGCRule(1) for cf in column_families})
        return table

"""Where the lander puts a decoded batch, and where it learns what has landed: a ``Store``.

The lander (``lander``, ``sink``, ``worker``) fetches, decodes and hands every batch of one
topic-partition to its store; the store alone decides how the batch is made durable and where
each partition resumes. Two exist:

- ``ParquetStore`` (here): the offset-named Parquet files of ``writer``, all-or-nothing per
  batch by their ``k of n`` names; one lander per lake (it holds the lake's lock and removes
  incomplete batches on start).
- ``pipelines.iceberg.landing.IcebergStore``: one Iceberg commit per table a batch feeds, the
  Kafka positions in the snapshot summaries; several landers may share the tables.

A store is handed to the decode process, so it must pickle (open connections lazily).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pipelines.bronze.layout import BatchId
from pipelines.bronze.reader import landed_offsets
from pipelines.bronze.writer import WrittenBatch, write_batch
from pipelines.decode import DecodedBatch

Landed = dict[tuple[str, int], int]  # (topic, partition) -> highest landed offset


class Store(Protocol):
    exclusive: bool  # one lander at a time (lock the lake, recover it on start)
    batch_bytes: int  # a backlog's polls are merged into batches of about this size (0: not)

    def landed(self, topics: Sequence[str]) -> Landed:
        """The highest offset landed per partition of ``topics`` (absent: none yet)."""
        ...

    def write(self, batch: BatchId, decoded: DecodedBatch, ingested_at: datetime) -> WrittenBatch:
        """Make ``decoded`` (the messages of ``batch``) durable, exactly once; safe to repeat
        for a batch whose outcome a crash left unknown."""
        ...


class ParquetStore:
    """The Parquet lake's files (``writer``, ``layout``)."""

    exclusive = True
    batch_bytes = 0  # a poll is a batch: the files of a batch cost the same at any size

    def __init__(self, lake: Path) -> None:
        self.lake = lake

    def landed(self, topics: Sequence[str]) -> Landed:
        return landed_offsets(self.lake)

    def write(self, batch: BatchId, decoded: DecodedBatch, ingested_at: datetime) -> WrittenBatch:
        return write_batch(
            self.lake,
            batch,
            decoded.tables,
            decoded.transactions,
            decoded.quarantine,
            ingested_at,
            notifications=decoded.notifications,
        )

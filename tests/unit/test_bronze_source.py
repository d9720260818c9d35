"""A lake remembers which Kafka cluster its offsets belong to."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.bronze.layout import list_lake
from pipelines.bronze.source import LakeSourceMismatch, check_source

pytestmark = pytest.mark.unit


def test_first_land_records_the_cluster_and_later_lands_must_match(tmp_path: Path) -> None:
    check_source(tmp_path, "cluster-A")
    check_source(tmp_path, "cluster-A")  # same cluster: fine, idempotent
    with pytest.raises(LakeSourceMismatch, match="cluster-A.*cluster-B"):
        check_source(tmp_path, "cluster-B")


def test_the_record_is_not_mistaken_for_a_batch_file(tmp_path: Path) -> None:
    check_source(tmp_path, "cluster-A")
    listing = list_lake(tmp_path)
    assert not listing.complete and not listing.incomplete and not listing.temp_files

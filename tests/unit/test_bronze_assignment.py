"""How landers share partitions (``pipelines.bronze.assignment``): the ``CHANGELAKE_LANDER_MEMBER``
forms, and the consumer group a ``group`` member joins, which is the lake's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.bronze.assignment import Member, group_id
from pipelines.config import Settings

pytestmark = pytest.mark.unit


def test_member_forms() -> None:
    assert Member.parse("") == Member() and not Member().shares
    assert Member.parse(" 1/3 ") == Member(1, 3) and Member(1, 3).shares
    group = Member.parse("group")
    assert group.group and group.shares
    for bad in ("3/3", "x/2", "group/2", "1"):
        with pytest.raises(ValueError, match="lander member"):
            Member.parse(bad)
    owners = [[Member(i, 3).owns("cl.s.t", p) for i in range(3)] for p in range(9)]
    assert all(sum(row) == 1 for row in owners)  # each partition has exactly one owner


def test_group_members_of_one_lake_share_a_group_and_two_lakes_never_do(tmp_path: Path) -> None:
    def gid(member: str, **kw: object) -> str:
        return group_id(Settings(_env_file=None, home=tmp_path, **kw), Member.parse(member))

    shared = "postgresql+psycopg://cl:{}@db:5432/catalog"
    one = gid("group", iceberg_catalog_uri=shared.format("s3cret"))
    assert one == gid("group", iceberg_catalog_uri=shared.format("rotated"))  # not the password
    assert "s3cret" not in one
    assert one != gid("group", iceberg_catalog_uri=shared.format("s3cret").replace("db:", "d2:"))
    assert gid("group", lake=tmp_path / "a") != gid("group", lake=tmp_path / "b")
    # static members only show lag through the group: its name is the prefix's, as before
    assert (
        gid("0/2", lake=tmp_path / "a")
        == gid("", lake=tmp_path / "b")
        == "changelake-bronze-lander"
    )

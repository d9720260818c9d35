"""The event-trigger install script: names come from the internal-schema constant and Settings,
quoted, so renaming the schema or an odd CDC role name cannot break or inject into it."""

import pytest

from pipelines.config import Settings
from pipelines.naming import quote_ident
from pipelines.stack import late_tables, postgres

pytestmark = pytest.mark.unit


def test_install_sql_uses_the_internal_schema_and_quotes_the_cdc_role():
    script = late_tables.install_sql(Settings(cdc_user='cdc"; DROP TABLE x; --'))
    schema = quote_ident(postgres.HEARTBEAT_SCHEMA)
    assert f'{schema}."captured_tables"' in script
    assert f'{schema}."publish_captured_table"()' in script
    assert late_tables.EVENT_TRIGGER.startswith(postgres.HEARTBEAT_SCHEMA)
    assert 'OWNER TO "cdc""; DROP TABLE x; --"' in script
    assert "SECURITY DEFINER SET search_path = pg_catalog, pg_temp" in script
    for tag in ("'CREATE TABLE'", "'CREATE TABLE AS'", "'SELECT INTO'", "'ALTER TABLE'"):
        assert tag in script

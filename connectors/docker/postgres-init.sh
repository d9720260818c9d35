#!/bin/sh
# docker runtime: the same roles as the native runtime (pipelines/stack/postgres.py): the CDC role
# has REPLICATION and is a member of the app role, so it owns (for publication purposes) every
# table the app role creates, now or later; plus the heartbeat table.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
  -v cdc="$CHANGELAKE_CDC_USER" -v cdcpw="$CHANGELAKE_CDC_PASSWORD" -v app="$POSTGRES_USER" \
  -v pub="$CHANGELAKE_PUBLICATION_NAME" -v publish="$CHANGELAKE_PUBLISH" <<'SQL'
CREATE ROLE :"cdc" LOGIN REPLICATION PASSWORD :'cdcpw';
GRANT :"app" TO :"cdc";
CREATE SCHEMA IF NOT EXISTS _changelake;
CREATE TABLE IF NOT EXISTS _changelake.heartbeat (id int PRIMARY KEY, ts timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS _changelake.debezium_signal (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data text);
-- created here with its publish option; Debezium's filtered mode manages its tables
CREATE PUBLICATION :"pub" WITH (publish = :'publish');
ALTER PUBLICATION :"pub" OWNER TO :"cdc";
SQL

-- Run once by the postgres image on its first start (/docker-entrypoint-initdb.d), as the
-- superuser POSTGRES_USER, in POSTGRES_DB (the Airflow metadata database).
--
-- Creates the sync target database and its owner. The names and the password come from
-- the container's environment (docker-compose.yaml passes GITHUB_SYNC_DB_USER,
-- GITHUB_SYNC_DB_PASSWORD and GITHUB_SYNC_DB_NAME from .env), read with psql's \getenv
-- (psql 15+; the compose file uses postgres:16), so no secret is written in this file.
-- The schema itself is applied by `github-sync migrate` (airflow-init) and the relay.
\set ON_ERROR_STOP on
\getenv sync_user GITHUB_SYNC_DB_USER
\getenv sync_password GITHUB_SYNC_DB_PASSWORD
\getenv sync_db GITHUB_SYNC_DB_NAME

CREATE ROLE :"sync_user" WITH LOGIN PASSWORD :'sync_password';
CREATE DATABASE :"sync_db" OWNER :"sync_user";
-- Only its owner (and superusers) may connect to the sync target.
REVOKE ALL ON DATABASE :"sync_db" FROM PUBLIC;

-- One PostgreSQL login role per vodhub process (compose runs this once, when the database is
-- created: deploy/postgres/init-roles.sh), each with its own password and connection limit.
-- None is a superuser, none may create databases, roles or tables, and each may connect only to
-- the vodhub database. The tables belong to vodhub_owner: the one-shot `vodhub migrate` (compose's
-- `migrate` service) logs in as it, creates them, and grants each process role only what that
-- process does with each table (GRANTS in entrypoints/migrate.py); the processes then start with
-- VODHUB_DB_MIGRATE=false and create nothing. pg_stat_activity and the server log tell the
-- processes apart, and revoking one process's access is `ALTER ROLE … NOLOGIN`.
-- psql variables: DBNAME, and owner_password, api_password, worker_password, relay_password,
-- projector_password, notifier_password, analytics_password.

\set ON_ERROR_STOP on

CREATE ROLE vodhub_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT 5
  PASSWORD :'owner_password';
CREATE ROLE vodhub_api LOGIN NOINHERIT CONNECTION LIMIT 40 PASSWORD :'api_password';
CREATE ROLE vodhub_worker LOGIN NOINHERIT CONNECTION LIMIT 40 PASSWORD :'worker_password';
CREATE ROLE vodhub_relay LOGIN NOINHERIT CONNECTION LIMIT 20 PASSWORD :'relay_password';
CREATE ROLE vodhub_projector LOGIN NOINHERIT CONNECTION LIMIT 20 PASSWORD :'projector_password';
CREATE ROLE vodhub_notifier LOGIN NOINHERIT CONNECTION LIMIT 20 PASSWORD :'notifier_password';
CREATE ROLE vodhub_analytics LOGIN NOINHERIT CONNECTION LIMIT 20 PASSWORD :'analytics_password';

REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;  -- the maintenance database: superusers only
GRANT CONNECT ON DATABASE :"DBNAME" TO vodhub_owner,
  vodhub_api, vodhub_worker, vodhub_relay, vodhub_projector, vodhub_notifier, vodhub_analytics;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO vodhub_owner;  -- only the owner creates tables
GRANT USAGE ON SCHEMA public
  TO vodhub_api, vodhub_worker, vodhub_relay, vodhub_projector, vodhub_notifier, vodhub_analytics;

-- One PostgreSQL login role per vodhub process (compose runs this once, when the database is
-- created: deploy/postgres/init-roles.sh), each with its own password and connection limit.
-- None is a superuser, none may create databases or roles, and each may connect only to the
-- vodhub database. Each process creates and migrates its tables at start (eventsourcing's
-- CREATE TABLE/INDEX IF NOT EXISTS needs the table's owner), so the tables belong to one
-- NOLOGIN role, vodhub_owner, that every login role acts as after it connects (`SET role`
-- below); session_user stays the process's own role, so pg_stat_activity and the server log
-- tell the processes apart, and revoking one process's access is `ALTER ROLE … NOLOGIN`.
-- psql variables: DBNAME, and api_password, worker_password, relay_password, projector_password,
-- notifier_password, analytics_password.

\set ON_ERROR_STOP on

CREATE ROLE vodhub_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
CREATE ROLE vodhub_api LOGIN NOINHERIT CONNECTION LIMIT 40 PASSWORD :'api_password' IN ROLE vodhub_owner;
CREATE ROLE vodhub_worker LOGIN NOINHERIT CONNECTION LIMIT 40 PASSWORD :'worker_password' IN ROLE vodhub_owner;
CREATE ROLE vodhub_relay LOGIN NOINHERIT CONNECTION LIMIT 20 PASSWORD :'relay_password' IN ROLE vodhub_owner;
CREATE ROLE vodhub_projector LOGIN NOINHERIT CONNECTION LIMIT 20 PASSWORD :'projector_password' IN ROLE vodhub_owner;
CREATE ROLE vodhub_notifier LOGIN NOINHERIT CONNECTION LIMIT 20 PASSWORD :'notifier_password' IN ROLE vodhub_owner;
CREATE ROLE vodhub_analytics LOGIN NOINHERIT CONNECTION LIMIT 20 PASSWORD :'analytics_password' IN ROLE vodhub_owner;
ALTER ROLE vodhub_api SET role = 'vodhub_owner';
ALTER ROLE vodhub_worker SET role = 'vodhub_owner';
ALTER ROLE vodhub_relay SET role = 'vodhub_owner';
ALTER ROLE vodhub_projector SET role = 'vodhub_owner';
ALTER ROLE vodhub_notifier SET role = 'vodhub_owner';
ALTER ROLE vodhub_analytics SET role = 'vodhub_owner';

REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;  -- the maintenance database: superusers only
GRANT CONNECT ON DATABASE :"DBNAME"
  TO vodhub_api, vodhub_worker, vodhub_relay, vodhub_projector, vodhub_notifier, vodhub_analytics;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO vodhub_owner;

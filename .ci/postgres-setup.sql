-- What the tests need on the PostgreSQL server besides the per-test databases (which the harness makes).
-- Idempotent: run by .ci/run as a superuser with `psql -v ON_ERROR_STOP=1 -f .ci/postgres-setup.sql`.

-- The unprivileged application role the RLS tests connect as (a superuser or BYPASSRLS role would bypass
-- row level security and prove nothing). Created only if missing; an existing role with privileges is an error,
-- not something to quietly repair.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'tenant_scope_app') THEN
        BEGIN
            CREATE ROLE tenant_scope_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
        EXCEPTION WHEN duplicate_object THEN
            NULL; -- created meanwhile by a concurrent run
        END;
    END IF;
    IF EXISTS (
        SELECT FROM pg_catalog.pg_roles
        WHERE rolname = 'tenant_scope_app'
          AND (rolsuper OR rolbypassrls OR rolcreatedb OR rolcreaterole OR rolreplication OR NOT rolcanlogin)
    ) THEN
        RAISE EXCEPTION 'role tenant_scope_app exists with the wrong attributes; it must be LOGIN NOSUPERUSER '
            'NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION (fix it with ALTER ROLE, or drop it)';
    END IF;
END
$$;

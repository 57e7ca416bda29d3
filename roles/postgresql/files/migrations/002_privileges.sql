-- 002_privileges: apply_privileges(app_role, maintenance_role) puts the
-- least-privilege model in place (role names are configuration, so the
-- postgresql role calls it after the migrations, as the superuser).
-- It compares what is granted now with what should be, GRANTs what is
-- missing, REVOKEs what is too much, and returns the statements it ran
-- (empty array = nothing to do). Run inside a transaction that is rolled
-- back, it tells what it would change (check mode).

CREATE OR REPLACE FUNCTION apply_privileges(app_role name, maintenance_role name)
RETURNS text[]
LANGUAGE plpgsql
SET search_path = public, pg_catalog, pg_temp
AS $$
DECLARE
    done     text[] := '{}';
    spec     record;
    have     text[];
    priv     text;
    stmt     text;
    grantee_oid oid;
    made     integer;
BEGIN
    IF app_role = maintenance_role THEN
        RAISE EXCEPTION 'apply_privileges: the application and maintenance roles must differ';
    END IF;
    PERFORM 1 FROM pg_roles WHERE rolname = app_role;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'apply_privileges: role % does not exist', app_role;
    END IF;
    PERFORM 1 FROM pg_roles WHERE rolname = maintenance_role;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'apply_privileges: role % does not exist', maintenance_role;
    END IF;

    -- The maintenance role owns the time series (to detach and drop partitions).
    FOR spec IN SELECT unnest(ARRAY['node_samples', 'guest_samples', 'storage_samples']) AS tbl LOOP
        made := set_partitioned_owner(spec.tbl::regclass, maintenance_role);
        IF made > 0 THEN
            done := done || format('ALTER TABLE %I (and %s partitions) OWNER TO %I', spec.tbl, made - 1,
                                   maintenance_role);
        END IF;
    END LOOP;

    -- Table privileges: exactly these, nothing more (owners are left alone).
    FOR spec IN SELECT * FROM (VALUES
        ('alerts',            app_role,         ARRAY['DELETE', 'INSERT', 'SELECT', 'UPDATE']),
        ('incidents',         app_role,         ARRAY['DELETE', 'INSERT', 'SELECT', 'UPDATE']),
        ('conversations',     app_role,         ARRAY['DELETE', 'INSERT', 'SELECT', 'UPDATE']),
        ('feedback',          app_role,         ARRAY['DELETE', 'INSERT', 'SELECT', 'UPDATE']),
        ('action_logs',       app_role,         ARRAY['INSERT', 'SELECT']),
        ('node_samples',      app_role,         ARRAY['INSERT', 'SELECT']),
        ('guest_samples',     app_role,         ARRAY['INSERT', 'SELECT']),
        ('storage_samples',   app_role,         ARRAY['INSERT', 'SELECT']),
        ('schema_migrations', app_role,         ARRAY[]::text[]),
        ('alerts',            maintenance_role, ARRAY['DELETE', 'SELECT']),
        ('incidents',         maintenance_role, ARRAY['DELETE', 'SELECT']),
        ('conversations',     maintenance_role, ARRAY['DELETE', 'SELECT']),
        ('feedback',          maintenance_role, ARRAY['SELECT']),
        ('action_logs',       maintenance_role, ARRAY['DELETE', 'INSERT', 'SELECT']),
        ('schema_migrations', maintenance_role, ARRAY[]::text[])
    ) AS s(tbl, grantee, privs) LOOP
        CONTINUE WHEN to_regclass(spec.tbl) IS NULL;  -- schema_migrations when run by hand
        grantee_oid := (SELECT oid FROM pg_roles WHERE rolname = spec.grantee);
        SELECT coalesce(array_agg(a.privilege_type::text), '{}') INTO have
          FROM pg_class c, aclexplode(c.relacl) a
         WHERE c.oid = spec.tbl::regclass AND a.grantee = grantee_oid;
        FOREACH priv IN ARRAY spec.privs LOOP
            IF NOT priv = ANY (have) THEN
                stmt := format('GRANT %s ON TABLE %I TO %I', priv, spec.tbl, spec.grantee);
                EXECUTE stmt;
                done := done || stmt;
            END IF;
        END LOOP;
        FOREACH priv IN ARRAY have LOOP
            IF NOT priv = ANY (spec.privs) THEN
                stmt := format('REVOKE %s ON TABLE %I FROM %I', priv, spec.tbl, spec.grantee);
                EXECUTE stmt;
                done := done || stmt;
            END IF;
        END LOOP;
    END LOOP;

    -- Column privileges: anonymisation may UPDATE only these two columns.
    FOR spec IN SELECT * FROM (VALUES ('user_email'), ('user_name')) AS s(col) LOOP
        PERFORM 1 FROM pg_attribute t, aclexplode(t.attacl) a
          WHERE t.attrelid = 'feedback'::regclass AND t.attname = spec.col
            AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = maintenance_role)
            AND a.privilege_type = 'UPDATE';
        IF NOT FOUND THEN
            stmt := format('GRANT UPDATE (%I) ON TABLE feedback TO %I', spec.col, maintenance_role);
            EXECUTE stmt;
            done := done || stmt;
        END IF;
    END LOOP;

    -- Database: only the two roles may connect; nobody else gets TEMP.
    FOR spec IN SELECT * FROM (VALUES (0::oid, 'PUBLIC', ARRAY[]::text[])) AS s(roleoid, rolename, privs)
                UNION ALL SELECT oid, quote_ident(rolname), ARRAY['CONNECT'] FROM pg_roles
                           WHERE rolname IN (app_role, maintenance_role) LOOP
        SELECT coalesce(array_agg(a.privilege_type::text), '{}') INTO have
          FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
         WHERE d.datname = current_database() AND a.grantee = spec.roleoid;
        FOREACH priv IN ARRAY spec.privs LOOP
            IF NOT priv = ANY (have) THEN
                stmt := format('GRANT %s ON DATABASE %I TO %s', priv, current_database(), spec.rolename);
                EXECUTE stmt;
                done := done || stmt;
            END IF;
        END LOOP;
        FOREACH priv IN ARRAY have LOOP
            IF NOT priv = ANY (spec.privs) THEN
                stmt := format('REVOKE %s ON DATABASE %I FROM %s', priv, current_database(), spec.rolename);
                EXECUTE stmt;
                done := done || stmt;
            END IF;
        END LOOP;
    END LOOP;

    -- Schema public: USAGE for the two roles, nothing for PUBLIC (no CREATE for anyone but the owner).
    FOR spec IN SELECT * FROM (VALUES (0::oid, 'PUBLIC', ARRAY[]::text[])) AS s(roleoid, rolename, privs)
                UNION ALL SELECT oid, quote_ident(rolname), ARRAY['USAGE'] FROM pg_roles
                           WHERE rolname IN (app_role, maintenance_role) LOOP
        SELECT coalesce(array_agg(a.privilege_type::text), '{}') INTO have
          FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
         WHERE n.nspname = 'public' AND a.grantee = spec.roleoid;
        FOREACH priv IN ARRAY spec.privs LOOP
            IF NOT priv = ANY (have) THEN
                stmt := format('GRANT %s ON SCHEMA public TO %s', priv, spec.rolename);
                EXECUTE stmt;
                done := done || stmt;
            END IF;
        END LOOP;
        FOREACH priv IN ARRAY have LOOP
            IF NOT priv = ANY (spec.privs) THEN
                stmt := format('REVOKE %s ON SCHEMA public FROM %s', priv, spec.rolename);
                EXECUTE stmt;
                done := done || stmt;
            END IF;
        END LOOP;
    END LOOP;

    -- The nightly job creates the partitions ahead.
    IF NOT has_function_privilege(maintenance_role, 'create_daily_partitions(regclass, integer, integer)',
                                  'EXECUTE') THEN
        stmt := format('GRANT EXECUTE ON FUNCTION create_daily_partitions(regclass, integer, integer) TO %I',
                       maintenance_role);
        EXECUTE stmt;
        done := done || stmt;
    END IF;
    RETURN done;
END
$$;

REVOKE ALL ON FUNCTION apply_privileges(name, name) FROM PUBLIC;

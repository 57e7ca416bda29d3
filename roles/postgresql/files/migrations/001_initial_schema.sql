-- 001_initial_schema: tables of the Proxmox AI monitoring system.
-- Idempotent: every statement can run again on a database that already has it
-- (IF NOT EXISTS, CREATE OR REPLACE). Applied once per database and recorded in
-- schema_migrations by proxmox_ai.hardening.pg_migrate. Never edit a migration
-- that has been released: add NNN_next.sql instead.
-- Role names are not known here: ownership and grants are applied by the
-- postgresql role after the migrations (see README.md next to this file).

CREATE TABLE IF NOT EXISTS alerts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    severity      text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    alert_type    text NOT NULL,
    entity_type   text NOT NULL DEFAULT 'system',
    entity        text NOT NULL,
    message       text NOT NULL,
    dedup_key     text NOT NULL,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    occurrences   integer NOT NULL DEFAULT 1 CHECK (occurrences > 0),
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
-- At most one unresolved alert per dedup key: writers use
-- INSERT ... ON CONFLICT (dedup_key) WHERE status <> 'resolved' DO UPDATE ...
CREATE UNIQUE INDEX IF NOT EXISTS alerts_dedup_key_unresolved ON alerts (dedup_key) WHERE status <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_created_at ON alerts (created_at);
CREATE INDEX IF NOT EXISTS alerts_entity ON alerts (entity, created_at);

-- alert_id is text without a foreign key: incidents are kept 12 months,
-- alerts 90 days, and incidents may refer to external ids ('security-001').
CREATE TABLE IF NOT EXISTS incidents (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id       text,
    entity_type    text NOT NULL,
    entity         text,
    symptoms       text NOT NULL,
    root_cause     text,
    actions_taken  text,
    resolved_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS incidents_created_at ON incidents (created_at);
CREATE INDEX IF NOT EXISTS incidents_alert_id ON incidents (alert_id);

-- Audit trail: append-only. The application role gets SELECT and INSERT only;
-- the trigger below refuses UPDATE for every role, retention may DELETE.
CREATE TABLE IF NOT EXISTS action_logs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "timestamp"  timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    action_type  text NOT NULL,
    entity       text,
    status       text NOT NULL,
    ip           inet,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS action_logs_created_at ON action_logs (created_at);
CREATE INDEX IF NOT EXISTS action_logs_action_type ON action_logs (action_type, created_at);

CREATE OR REPLACE FUNCTION action_logs_refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'action_logs is append-only: UPDATE is not allowed'
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE OR REPLACE TRIGGER action_logs_append_only BEFORE UPDATE ON action_logs
    FOR EACH STATEMENT EXECUTE FUNCTION action_logs_refuse_update();

CREATE TABLE IF NOT EXISTS conversations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id  text NOT NULL,
    channel          text,
    user_id          text,
    role             text NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    content          text NOT NULL,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS conversations_created_at ON conversations (created_at);
CREATE INDEX IF NOT EXISTS conversations_conversation_id ON conversations (conversation_id, created_at);

CREATE TABLE IF NOT EXISTS feedback (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id     text,
    incident_id  bigint,
    user_email   text,
    user_name    text,
    rating       smallint CHECK (rating BETWEEN 1 AND 5),
    comment      text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS feedback_created_at ON feedback (created_at);

-- Collector time series: range-partitioned by created_at (the sample time),
-- one partition per UTC day, created ahead by create_daily_partitions(); a
-- DEFAULT partition catches rows outside the created days so inserts never
-- fail. Expiry drops whole partitions (pg_retention).
CREATE TABLE IF NOT EXISTS node_samples (
    created_at    timestamptz NOT NULL DEFAULT now(),
    node          text NOT NULL,
    status        text,
    cpu           double precision,
    cpu_count     integer,
    load1         double precision,
    mem_used      bigint,
    mem_total     bigint,
    swap_used     bigint,
    swap_total    bigint,
    rootfs_used   bigint,
    rootfs_total  bigint,
    net_in        bigint,
    net_out       bigint,
    uptime        bigint,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
) PARTITION BY RANGE (created_at);
CREATE INDEX IF NOT EXISTS node_samples_node_created_at ON node_samples (node, created_at);

CREATE TABLE IF NOT EXISTS guest_samples (
    created_at   timestamptz NOT NULL DEFAULT now(),
    node         text NOT NULL,
    vmid         integer NOT NULL,
    guest_type   text NOT NULL CHECK (guest_type IN ('qemu', 'lxc')),
    name         text,
    status       text,
    cpu          double precision,
    cpus         double precision,
    mem_used     bigint,
    mem_total    bigint,
    disk_used    bigint,
    disk_total   bigint,
    disk_read    bigint,
    disk_write   bigint,
    net_in       bigint,
    net_out      bigint,
    uptime       bigint,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
) PARTITION BY RANGE (created_at);
CREATE INDEX IF NOT EXISTS guest_samples_vmid_created_at ON guest_samples (vmid, created_at);
CREATE INDEX IF NOT EXISTS guest_samples_node_created_at ON guest_samples (node, created_at);

CREATE TABLE IF NOT EXISTS storage_samples (
    created_at    timestamptz NOT NULL DEFAULT now(),
    node          text NOT NULL,
    storage       text NOT NULL,
    storage_type  text,
    active        boolean,
    shared        boolean,
    used          bigint,
    total         bigint,
    avail         bigint,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
) PARTITION BY RANGE (created_at);
CREATE INDEX IF NOT EXISTS storage_samples_node_storage_created_at ON storage_samples (node, storage, created_at);

-- create_daily_partitions(parent, days_ahead, days_back): makes sure the
-- DEFAULT partition and one partition per UTC day from today - days_back to
-- today + days_ahead exist (named <parent>_pYYYYMMDD). Rows of a new day that
-- already landed in the DEFAULT partition are moved into it. New partitions
-- get the parent's owner. Returns how many partitions it created (0 = nothing
-- to do). lock_timeout applies: callers retry later if it was not free.
-- SECURITY DEFINER so that the maintenance role (the only role granted
-- EXECUTE) can add partitions without CREATE on the schema; search_path is
-- pinned and every name is quoted, and the parent must be a range-partitioned
-- table owned by the caller.
CREATE OR REPLACE FUNCTION create_daily_partitions(parent regclass, days_ahead integer DEFAULT 7,
                                                   days_back integer DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp        name;
    rel        name;
    owner_name name;
    keycol     name;
    default_rel regclass;
    today      date := (now() AT TIME ZONE 'UTC')::date;
    d          date;
    lo         timestamptz;
    hi         timestamptz;
    part       text;
    has_rows   boolean;
    made       integer := 0;
BEGIN
    IF days_ahead < 0 OR days_back < 0 THEN
        RAISE EXCEPTION 'create_daily_partitions: days_ahead and days_back must be >= 0';
    END IF;
    SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), a.attname
      INTO nsp, rel, owner_name, keycol
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_partitioned_table p ON p.partrelid = c.oid
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]
     WHERE c.oid = parent AND p.partstrat = 'r' AND p.partnatts = 1;
    IF rel IS NULL THEN
        RAISE EXCEPTION 'create_daily_partitions: % is not range-partitioned on one column', parent;
    END IF;
    IF NOT pg_has_role(session_user, owner_name, 'USAGE') THEN
        RAISE EXCEPTION 'create_daily_partitions: % does not own %', session_user, parent
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    SELECT NULLIF(p.partdefid, 0)::regclass INTO default_rel FROM pg_partitioned_table p WHERE p.partrelid = parent;
    IF default_rel IS NULL THEN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', nsp, rel || '_default', parent);
        EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', nsp, rel || '_default', owner_name);
        default_rel := format('%I.%I', nsp, rel || '_default')::regclass;
        made := made + 1;
    END IF;

    FOR d IN SELECT g::date FROM generate_series(today - days_back, today + days_ahead, interval '1 day') AS g LOOP
        part := rel || '_p' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(format('%I.%I', nsp, part)) IS NOT NULL;
        lo := d::timestamp AT TIME ZONE 'UTC';
        hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I >= $1 AND %I < $2)', default_rel, keycol, keycol)
           INTO has_rows USING lo, hi;
        IF has_rows THEN
            EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', nsp, part, parent);
            EXECUTE format('WITH moved AS (DELETE FROM %s WHERE %I >= $1 AND %I < $2 RETURNING *) '
                           'INSERT INTO %I.%I SELECT * FROM moved', default_rel, keycol, keycol, nsp, part)
               USING lo, hi;
            EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                           parent, nsp, part, lo, hi);
        ELSE
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                           nsp, part, parent, lo, hi);
        END IF;
        EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', nsp, part, owner_name);
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;

-- set_partitioned_owner(parent, new_owner): gives a partitioned table and all
-- of its partitions to new_owner (ALTER TABLE ... OWNER does not recurse).
-- Returns how many relations changed owner.
CREATE OR REPLACE FUNCTION set_partitioned_owner(parent regclass, new_owner name)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r      record;
    made   integer := 0;
BEGIN
    FOR r IN SELECT t.relid, c.relowner FROM pg_partition_tree(parent) t JOIN pg_class c ON c.oid = t.relid LOOP
        IF pg_get_userbyid(r.relowner) <> new_owner THEN
            EXECUTE format('ALTER TABLE %s OWNER TO %I', r.relid::regclass, new_owner);
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END
$$;

SELECT create_daily_partitions('node_samples', 7, 1);
SELECT create_daily_partitions('guest_samples', 7, 1);
SELECT create_daily_partitions('storage_samples', 7, 1);

REVOKE ALL ON FUNCTION create_daily_partitions(regclass, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION set_partitioned_owner(regclass, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION action_logs_refuse_update() FROM PUBLIC;

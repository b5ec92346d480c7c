-- Warden panel schema, version 1.
--
-- Conventions: uuid primary keys from gen_random_uuid() (core since
-- PostgreSQL 13), timestamptz everywhere, secrets stored only as hashes or
-- as *_enc ciphertext (AES-256-GCM, encrypted by warden-api, never by SQL),
-- CHECK constraints for every closed set of values so a bug in the API cannot
-- write a state the rest of the system does not understand. Applied by
-- wd_migrate inside one transaction together with its schema_migrations row.

-- Keeps updated_at honest without every UPDATE having to remember it.
CREATE FUNCTION warden_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- ---------------------------------------------------------------- accounts

-- citext is an extension we do not want to require: names and e-mails are
-- stored lower-case (the API folds them) and the CHECKs make that an invariant,
-- so the plain unique indexes are case-insensitive in effect.
CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username        text NOT NULL UNIQUE
                    CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    email           text NOT NULL UNIQUE
                    CHECK (email = lower(email) AND char_length(email) <= 254
                           AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    password_hash   text NOT NULL,
    role            text NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    totp_secret_enc text,
    totp_enabled    boolean NOT NULL DEFAULT false,
    -- Last accepted TOTP time step: a code is accepted once (replay guard).
    totp_last_step  bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    disabled        boolean NOT NULL DEFAULT false,
    CHECK (NOT totp_enabled OR totp_secret_enc IS NOT NULL)
);
CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION warden_touch_updated_at();

CREATE TABLE recovery_codes (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  text NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, code_hash)
);

-- Refresh-token rotation: each login starts a family; using a token sets its
-- used_at and issues the next token in the same family. Presenting a token
-- whose used_at is already set is a replay: the API revokes the family.
CREATE TABLE refresh_families (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text CHECK (revoked_reason IS NULL OR revoked_at IS NOT NULL),
    user_agent     text,
    ip             inet
);
CREATE INDEX refresh_families_user_idx ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id  uuid NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    CHECK (expires_at > issued_at)
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
-- At most one live (unused) token per family: two concurrent rotations of the
-- same token cannot both succeed (the second gets a unique violation).
CREATE UNIQUE INDEX refresh_tokens_one_live_idx ON refresh_tokens (family_id)
    WHERE used_at IS NULL;

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    -- First characters of the key, shown in the UI to tell keys apart.
    prefix       text NOT NULL CHECK (char_length(prefix) BETWEEN 4 AND 16),
    key_hash     text NOT NULL UNIQUE,
    scopes       text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- ------------------------------------------------------------------- nodes

CREATE TABLE nodes (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                 text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 100),
    fqdn                 text NOT NULL,
    public               boolean NOT NULL DEFAULT true,
    memory_mb            bigint NOT NULL CHECK (memory_mb > 0),
    memory_overalloc_pct int NOT NULL DEFAULT 0 CHECK (memory_overalloc_pct BETWEEN 0 AND 1000),
    disk_mb              bigint NOT NULL CHECK (disk_mb > 0),
    disk_overalloc_pct   int NOT NULL DEFAULT 0 CHECK (disk_overalloc_pct BETWEEN 0 AND 1000),
    maintenance          boolean NOT NULL DEFAULT false,
    last_seen_at         timestamptz,
    online               boolean NOT NULL DEFAULT false,
    version              text,
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE node_join_tokens (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    node_id    uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX node_join_tokens_node_idx ON node_join_tokens (node_id);

-- An ip:port on a node. server_id says which server holds it (its primary
-- allocation or an additional one); the FK is added after servers exists.
CREATE TABLE allocations (
    id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    node_id   uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    ip        inet NOT NULL,
    port      int NOT NULL CHECK (port BETWEEN 1 AND 65535),
    server_id uuid,
    UNIQUE (node_id, ip, port),
    UNIQUE (id, node_id) -- target of servers' (allocation_id, node_id) FK
);

-- --------------------------------------------------------------- templates

CREATE TABLE templates (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    author      text NOT NULL DEFAULT '',
    body        jsonb NOT NULL CHECK (jsonb_typeof(body) = 'object'), -- Warden template JSON
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER templates_touch BEFORE UPDATE ON templates
    FOR EACH ROW EXECUTE FUNCTION warden_touch_updated_at();

-- ----------------------------------------------------------------- servers

-- Limits of 0 mean "unlimited". revision is bumped on every change the agent
-- must see, for optimistic concurrency (UPDATE ... WHERE revision = $n).
-- Deleting a user, node or template that still has servers is refused.
CREATE TABLE servers (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 191),
    description   text NOT NULL DEFAULT '',
    owner_id      uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    node_id       uuid NOT NULL REFERENCES nodes (id) ON DELETE RESTRICT,
    template_id   uuid NOT NULL REFERENCES templates (id) ON DELETE RESTRICT,
    allocation_id uuid NOT NULL UNIQUE,
    memory_mb     bigint NOT NULL DEFAULT 0 CHECK (memory_mb >= 0),
    disk_mb       bigint NOT NULL DEFAULT 0 CHECK (disk_mb >= 0),
    cpu_pct       int NOT NULL DEFAULT 0 CHECK (cpu_pct >= 0),
    pids          int NOT NULL DEFAULT 0 CHECK (pids >= 0),
    state         text NOT NULL DEFAULT 'offline'
                  CHECK (state IN ('offline', 'installing', 'starting', 'running',
                                   'stopping', 'crashed', 'unknown')),
    installed     boolean NOT NULL DEFAULT false,
    suspended     boolean NOT NULL DEFAULT false,
    revision      bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- The primary allocation must be on the server's own node.
    FOREIGN KEY (allocation_id, node_id) REFERENCES allocations (id, node_id) ON DELETE RESTRICT
);
CREATE INDEX servers_owner_idx ON servers (owner_id);
CREATE INDEX servers_node_idx ON servers (node_id);
CREATE INDEX servers_template_idx ON servers (template_id);
CREATE TRIGGER servers_touch BEFORE UPDATE ON servers
    FOR EACH ROW EXECUTE FUNCTION warden_touch_updated_at();

ALTER TABLE allocations ADD CONSTRAINT allocations_server_fk
    FOREIGN KEY (server_id) REFERENCES servers (id) ON DELETE SET NULL;
CREATE INDEX allocations_server_idx ON allocations (server_id);

-- A secret variable keeps only value_enc (ciphertext); a plain one only value.
CREATE TABLE server_variables (
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name      text NOT NULL CHECK (name ~ '^[A-Z_][A-Z0-9_]{0,63}$'),
    value     text,
    value_enc text,
    PRIMARY KEY (server_id, name),
    CHECK (value IS NULL OR value_enc IS NULL)
);

CREATE TABLE subusers (
    server_id   uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permissions text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, user_id)
);
CREATE INDEX subusers_user_idx ON subusers (user_id);

-- ------------------------------------------------------------------- audit

-- No foreign keys on purpose: the audit trail outlives the users, keys and
-- servers it mentions; actor_label keeps a readable name after deletion.
CREATE TABLE audit_log (
    id               bigserial PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT now(),
    actor_user_id    uuid,
    actor_api_key_id uuid,
    actor_label      text NOT NULL,
    ip               inet,
    action           text NOT NULL CHECK (char_length(action) BETWEEN 1 AND 100),
    target_type      text,
    target_id        text,
    server_id        uuid,
    metadata         jsonb NOT NULL DEFAULT '{}',
    request_id       text
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_server_at_idx ON audit_log (server_id, at) WHERE server_id IS NOT NULL;
CREATE INDEX audit_log_actor_at_idx ON audit_log (actor_user_id, at) WHERE actor_user_id IS NOT NULL;

-- --------------------------------------------------------------- schedules

CREATE TABLE schedules (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    server_id   uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    cron        text NOT NULL CHECK (char_length(cron) BETWEEN 9 AND 200),
    enabled     boolean NOT NULL DEFAULT true,
    next_run_at timestamptz,
    last_run_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_server_idx ON schedules (server_id);
-- The scheduler's "what is due" scan.
CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE enabled;

CREATE TABLE schedule_tasks (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    schedule_id   uuid NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    seq           int NOT NULL CHECK (seq >= 0),
    action        text NOT NULL CHECK (action IN ('command', 'power', 'backup')),
    payload       text NOT NULL DEFAULT '',
    time_offset_s int NOT NULL DEFAULT 0 CHECK (time_offset_s BETWEEN 0 AND 86400),
    UNIQUE (schedule_id, seq)
);

-- ----------------------------------------------------------------- backups

CREATE TABLE backups (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    server_id    uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 191),
    size_bytes   bigint CHECK (size_bytes >= 0),
    sha256       text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'completed', 'failed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CHECK (state <> 'completed' OR (completed_at IS NOT NULL AND sha256 IS NOT NULL))
);
CREATE INDEX backups_server_idx ON backups (server_id, created_at);

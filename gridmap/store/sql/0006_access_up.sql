-- Access: accounts, the divisions each one holds, sessions (tokens that can be revoked),
-- slowed-down sign-in after failures, and an append-only audit log. Households gain the
-- personal data that access protects: the head of household's name and phone.

CREATE TABLE app_user (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[^[:space:][:cntrl:]]{2,64}$'),
    role          text NOT NULL CHECK (role IN ('admin', 'planner', 'dispatcher', 'grid_worker',
                                                'analyst')),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    password_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

-- a county or township or community (12 digits) or a grid (15 digits); checked against the
-- store when granted, kept when a grid later retires (the grant then shows nothing)
CREATE TABLE user_division (
    user_id bigint NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    code    text NOT NULL CHECK (code ~ '^([0-9]{12}|[0-9]{15})$'),
    PRIMARY KEY (user_id, code)
);

-- one row per issued token (its jti): revoking the row revokes the token
CREATE TABLE auth_session (
    id         uuid PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    client     text,
    CONSTRAINT auth_session_interval CHECK (expires_at > created_at)
);
CREATE INDEX auth_session_user_idx ON auth_session (user_id);

-- failed sign-ins per account name (known or not): each one past the first few doubles
-- the wait before the next attempt is even checked
CREATE TABLE sign_in_failure (
    name     text PRIMARY KEY,
    failures integer NOT NULL CHECK (failures > 0),
    last_at  timestamptz NOT NULL
);

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    user_name text,            -- NULL: anonymous
    role      text,
    action    text NOT NULL CHECK (action IN ('read', 'write', 'sign_in', 'sign_in_failed',
                                              'sign_out', 'refused')),
    target    text NOT NULL,   -- the endpoint (METHOD /path) or the command
    divisions text[] NOT NULL DEFAULT '{}',
    row_ids   text[],
    row_count integer,
    client    text,            -- address of the caller, or "cli"
    detail    text
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_user_idx ON audit_log (user_name, at);

CREATE FUNCTION gridmap_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION gridmap_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_audit_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM CURRENT_USER;

-- every process caches who a token belongs to: a change to accounts, grants or sessions
-- tells them to forget (a new session needs no notice: nobody has cached it)
CREATE TRIGGER app_user_notify AFTER UPDATE OR DELETE OR TRUNCATE ON app_user
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_table();
CREATE TRIGGER user_division_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON user_division FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_table();
CREATE TRIGGER auth_session_notify AFTER UPDATE OR DELETE OR TRUNCATE ON auth_session
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_table();

ALTER TABLE household
    ADD COLUMN head_name text CHECK (head_name <> ''),
    ADD COLUMN phone     text CHECK (phone ~ '^[0-9+\- ]{5,20}$');

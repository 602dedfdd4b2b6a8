-- API keys: issued by an admin to an app or a person, each one acting as an account (its
-- role and divisions). Only the SHA-256 of a key is kept; the key is shown once, when made.
-- A revoked key, or a key of a disabled or deleted account, no longer works.

CREATE TABLE api_key (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    label      text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    key_hash   text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CONSTRAINT api_key_interval CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);
CREATE INDEX api_key_user_idx ON api_key (user_id);

-- every process caches who a key belongs to: a revocation tells them to forget (a new key
-- needs no notice: nobody has cached it)
CREATE TRIGGER api_key_notify AFTER UPDATE OR DELETE OR TRUNCATE ON api_key
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_table();

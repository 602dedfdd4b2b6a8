ALTER TABLE household DROP COLUMN IF EXISTS head_name, DROP COLUMN IF EXISTS phone;
DROP TABLE IF EXISTS audit_log;
DROP FUNCTION IF EXISTS gridmap_audit_append_only();
DROP TABLE IF EXISTS sign_in_failure;
DROP TABLE IF EXISTS auth_session;
DROP TABLE IF EXISTS user_division;
DROP TABLE IF EXISTS app_user;

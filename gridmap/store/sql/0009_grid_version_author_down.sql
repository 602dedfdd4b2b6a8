ALTER TABLE grid_version DROP COLUMN IF EXISTS author, DROP COLUMN IF EXISTS approver,
    DROP COLUMN IF EXISTS restored_from;

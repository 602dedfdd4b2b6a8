-- Who published each version of a community's grids (and who approved it), beside its note.
ALTER TABLE grid_version
    ADD COLUMN author   text CHECK (length(author) <= 200),
    ADD COLUMN approver text CHECK (length(approver) <= 200),
    ADD COLUMN restored_from integer CHECK (restored_from >= 1);

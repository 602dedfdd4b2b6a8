DROP TABLE IF EXISTS plan_draft_edit, plan_draft_worker, plan_draft_grid, plan_draft_base,
    plan_draft;

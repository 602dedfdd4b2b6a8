-- Drafts (plans): a planner redraws a community's grids (or a township's, for boundary changes
-- between its communities) in a draft; nothing reaches the published grids until the draft is
-- validated, submitted, approved and published. Every edit is logged with the grids and
-- workers it changed, before and after, so it can be undone and redone; the revision counts
-- every change, for optimistic locking (ETag / If-Match).

CREATE TABLE plan_draft (
    id           bigserial PRIMARY KEY,
    area_code    char(12) NOT NULL REFERENCES division (code) ON UPDATE CASCADE,
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    status       text NOT NULL DEFAULT 'open'
                 CHECK (status IN ('open', 'submitted', 'approved', 'published', 'abandoned')),
    revision     integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    author       text NOT NULL CHECK (length(author) <= 200),
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    submitted_by text CHECK (length(submitted_by) <= 200),
    submitted_at timestamptz,
    submit_note  text CHECK (length(submit_note) <= 2000),
    approved_by  text CHECK (length(approved_by) <= 200),
    approved_at  timestamptz,
    published_by text CHECK (length(published_by) <= 200),
    published_at timestamptz,
    closing_note text CHECK (length(closing_note) <= 2000)
);
CREATE INDEX plan_draft_area_idx ON plan_draft (area_code, status);

-- the published version of each community the draft started from (NULL: none yet)
CREATE TABLE plan_draft_base (
    draft_id       bigint NOT NULL REFERENCES plan_draft (id) ON DELETE CASCADE,
    community_code char(12) NOT NULL REFERENCES division (code) ON UPDATE CASCADE,
    version        integer,
    PRIMARY KEY (draft_id, community_code)
);

CREATE TABLE plan_draft_grid (
    draft_id         bigint NOT NULL REFERENCES plan_draft (id) ON DELETE CASCADE,
    code             char(15) NOT NULL CHECK (code ~ '^[0-9]{15}$' AND right(code, 3) <> '000'),
    name             text NOT NULL CHECK (name <> ''),
    kind             text NOT NULL CHECK (kind IN ('comprehensive', 'exclusive', 'micro')),
    community_code   char(12) NOT NULL,
    parent_grid_code char(15),
    locked           boolean NOT NULL DEFAULT false,
    geom             geometry(MultiPolygon, 4326) NOT NULL,
    PRIMARY KEY (draft_id, code),
    CONSTRAINT plan_draft_grid_code_in_community CHECK (left(code, 12) = community_code),
    CONSTRAINT plan_draft_grid_valid CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))
);

-- the workers of the draft's area: where they are now (base) and where the draft puts them
CREATE TABLE plan_draft_worker (
    draft_id       bigint NOT NULL REFERENCES plan_draft (id) ON DELETE CASCADE,
    worker_id      text NOT NULL REFERENCES grid_worker (id) ON DELETE CASCADE,
    base_grid_code char(15),
    grid_code      char(15),
    PRIMARY KEY (draft_id, worker_id)
);

CREATE TABLE plan_draft_edit (
    draft_id bigint NOT NULL REFERENCES plan_draft (id) ON DELETE CASCADE,
    seq      integer NOT NULL CHECK (seq >= 1),
    op       text NOT NULL,
    params   jsonb NOT NULL DEFAULT '{}',
    before   jsonb NOT NULL,  -- {"grids": {code: row or null}, "workers": {id: grid or null}}
    after    jsonb NOT NULL,
    author   text,
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    undone   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (draft_id, seq)
);

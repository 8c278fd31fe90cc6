-- 0001: the dashboard's tables and the sync's own state.
--
-- Keys: repositories and issues are keyed by GitHub's numeric id (github_id), never by
-- a name, because names change (renames, transfers) and numbers repeat across
-- repositories; pull requests and commits by (project_id, number/sha). Human labels
-- (bug_number, full_name) stay as ordinary columns.
--
-- Ownership: columns written by the sync are listed in github_sync.loader; the
-- dashboard-owned columns (projects.complexity, projects.client_appeal) are never
-- part of an upsert's SET list.

CREATE TABLE projects (
    id              bigserial PRIMARY KEY,
    github_id       bigint      NOT NULL UNIQUE,
    owner           text        NOT NULL,
    name            text        NOT NULL,
    full_name       text        NOT NULL,
    description     text,
    github_url      text        NOT NULL,
    language        text,
    tags            text[]      NOT NULL DEFAULT '{}',
    stars           integer     NOT NULL DEFAULT 0,
    forks           integer     NOT NULL DEFAULT 0,
    open_issues     integer     NOT NULL DEFAULT 0,
    default_branch  text,
    is_fork         boolean     NOT NULL DEFAULT false,
    last_commit     timestamptz,
    status          text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'shipped')),
    created_at      timestamptz,
    updated_at      timestamptz,
    -- Tombstone: the repository vanished from its owner (deleted, transferred away,
    -- or no longer visible to the token). The row is kept for history.
    removed_at      timestamptz,
    removed_reason  text,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    -- Dashboard-owned: set by people, never touched by the sync.
    complexity      integer,
    client_appeal   integer
);
CREATE INDEX projects_status_idx ON projects (status);
CREATE INDEX projects_language_idx ON projects (language);
CREATE INDEX projects_complexity_idx ON projects (complexity);
CREATE INDEX projects_client_appeal_idx ON projects (client_appeal);
CREATE INDEX projects_full_name_idx ON projects (lower(full_name));
-- A live repository's URL is unique; a removed one may share it with the repository
-- that later took its name.
CREATE UNIQUE INDEX projects_github_url_key ON projects (github_url) WHERE removed_at IS NULL;

-- One row per GitHub issue; pull requests live in pull_requests.
-- bug_number ("GH-<n>") is only unique within a project: two repositories both have #1.
CREATE TABLE bugs (
    id              bigserial PRIMARY KEY,
    github_id       bigint      NOT NULL UNIQUE,
    project_id      bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    bug_number      text        NOT NULL,
    number          integer     NOT NULL,
    title           text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    severity        text        NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    status          text        NOT NULL CHECK (status IN ('pending', 'in_progress', 'closed')),
    sla_hours       integer     NOT NULL,
    priority_score  smallint    NOT NULL CHECK (priority_score BETWEEN 0 AND 100),
    is_blocker      boolean     NOT NULL DEFAULT false,
    labels          text[]      NOT NULL DEFAULT '{}',
    assignees       text[]      NOT NULL DEFAULT '{}',
    author          text,
    github_url      text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    resolved_at     timestamptz,
    -- Tombstone for issues deleted or transferred away (known from webhooks or reconciliation).
    removed_at      timestamptz,
    removed_reason  text,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bugs_project_bug_number_key UNIQUE (project_id, bug_number)
);
CREATE INDEX bugs_severity_idx ON bugs (severity);
CREATE INDEX bugs_status_idx ON bugs (status);
CREATE INDEX bugs_priority_score_idx ON bugs (priority_score DESC);
CREATE INDEX bugs_is_blocker_idx ON bugs (project_id) WHERE is_blocker;

-- Pull requests: what a delivery dashboard asks of them is throughput and flow
-- (opened -> merged, time to merge, drafts, who), so we keep state, draft, author,
-- created/merged/closed times and labels. base_ref/head_ref and the line counts are
-- only in the pulls endpoints and webhook payloads, not in the issues listing the
-- sync reads PRs from (one request instead of two per repository), so they are
-- nullable and filled when a source that has them passes by.
-- Keyed by (project_id, number): the issues listing gives a PR's *issue* id and the
-- pulls endpoint and webhooks its *pull request* id, so no GitHub id is common to all
-- sources, while the number is.
CREATE TABLE pull_requests (
    id              bigserial PRIMARY KEY,
    project_id      bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    number          integer     NOT NULL,
    title           text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    state           text        NOT NULL CHECK (state IN ('open', 'closed', 'merged')),
    draft           boolean     NOT NULL DEFAULT false,
    author          text,
    labels          text[]      NOT NULL DEFAULT '{}',
    base_ref        text,
    head_ref        text,
    additions       integer,
    deletions       integer,
    changed_files   integer,
    github_url      text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    closed_at       timestamptz,
    merged_at       timestamptz,
    removed_at      timestamptz,
    removed_reason  text,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pull_requests_project_number_key UNIQUE (project_id, number)
);
CREATE INDEX pull_requests_state_idx ON pull_requests (state);
CREATE INDEX pull_requests_merged_at_idx ON pull_requests (merged_at DESC);

-- Commits of the default branch inside the configured window (commits_since_days):
-- enough for activity charts and "who ships"; the full history is only counted
-- (project_metrics.commits_count), not copied. Author e-mails are deliberately not
-- stored (personal data the dashboard does not need).
CREATE TABLE commits (
    id              bigserial PRIMARY KEY,
    project_id      bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    sha             text        NOT NULL,
    author_login    text,
    author_name     text,
    message         text        NOT NULL DEFAULT '',
    committed_at    timestamptz NOT NULL,
    github_url      text,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commits_project_sha_key UNIQUE (project_id, sha)
);
CREATE INDEX commits_committed_at_idx ON commits (project_id, committed_at DESC);

CREATE TABLE project_metrics (
    id              bigserial PRIMARY KEY,
    project_id      bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    date            date        NOT NULL,
    commits_count   integer     NOT NULL DEFAULT 0,
    contributors    integer     NOT NULL DEFAULT 0,
    lines_of_code   bigint      NOT NULL DEFAULT 0,
    tech_stack      text[]      NOT NULL DEFAULT '{}',
    health_score    smallint    NOT NULL CHECK (health_score BETWEEN 0 AND 100),
    open_issues     integer     NOT NULL DEFAULT 0,
    has_ci          boolean     NOT NULL DEFAULT false,
    has_tests       boolean     NOT NULL DEFAULT false,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT project_metrics_project_date_key UNIQUE (project_id, date)
);
CREATE INDEX project_metrics_health_score_idx ON project_metrics (health_score DESC);

CREATE TABLE import_logs (
    id               bigserial PRIMARY KEY,
    source           text        NOT NULL DEFAULT 'github',
    records_imported integer     NOT NULL DEFAULT 0,
    records_failed   integer     NOT NULL DEFAULT 0,
    errors           text[]      NOT NULL DEFAULT '{}',
    metadata         jsonb       NOT NULL DEFAULT '{}',
    "timestamp"      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX import_logs_source_idx ON import_logs (source);
CREATE INDEX import_logs_timestamp_idx ON import_logs ("timestamp" DESC);
-- One row per DAG run: a callback that fires twice must not log twice.
CREATE UNIQUE INDEX import_logs_run_key ON import_logs ((metadata ->> 'dag_id'), (metadata ->> 'run_id'))
    WHERE metadata ? 'run_id';

-- Sync state ---------------------------------------------------------------

-- Per (repository, stream) high-water marks, advanced only in the transaction that
-- committed the rows they cover.
CREATE TABLE sync_cursors (
    project_id      bigint      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    stream          text        NOT NULL,
    cursor_value    timestamptz,
    details         jsonb       NOT NULL DEFAULT '{}',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, stream)
);

-- Conditional-request cache. Keyed by a hash of the token (ETags are per token on
-- GitHub) and the request URL; the token itself is never stored.
CREATE TABLE github_http_cache (
    token_hash      text        NOT NULL,
    url             text        NOT NULL,
    etag            text,
    last_modified   text,
    link            text,
    body            bytea       NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_hash, url)
);

-- Webhook deliveries, stored by the relay before it answers GitHub.
CREATE TABLE webhook_deliveries (
    delivery_id     text        PRIMARY KEY,
    event           text        NOT NULL,
    action          text,
    hook_id         text,
    repository_id   bigint,
    repository      text,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'forwarded', 'processed', 'failed', 'ignored')),
    dag_run_id      text,
    attempts        integer     NOT NULL DEFAULT 0,
    error           text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    forwarded_at    timestamptz,
    processed_at    timestamptz
);
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (received_at) WHERE status = 'pending';

-- One row per sync DAG run, opened by the run's first task and closed by the DAG-level
-- callback; import_logs is written from it. A run whose callback could not write its
-- import_logs row stays here with logged = false, and the next run's row reports it.
CREATE TABLE sync_runs (
    dag_id          text        NOT NULL,
    run_id          text        NOT NULL,
    mode            text        NOT NULL CHECK (mode IN ('full', 'incremental', 'repository', 'webhook')),
    owner           text,
    state           text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'success', 'failed')),
    repositories_total integer  NOT NULL DEFAULT 0,
    details         jsonb       NOT NULL DEFAULT '{}',
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    logged          boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (dag_id, run_id)
);
CREATE INDEX sync_runs_started_at_idx ON sync_runs (started_at DESC);

-- Per-repository outcome of a run: written by the mapped task itself (in its own
-- transaction, after the data transaction), so progress, the summary, import_logs and
-- the status page read one source of truth.
CREATE TABLE sync_repository_runs (
    dag_id          text        NOT NULL,
    run_id          text        NOT NULL,
    repository      text        NOT NULL,
    project_id      bigint,
    state           text        NOT NULL CHECK (state IN ('running', 'success', 'failed', 'skipped', 'deferred')),
    try_number      integer     NOT NULL DEFAULT 1,
    records         integer     NOT NULL DEFAULT 0,
    requests        integer     NOT NULL DEFAULT 0,
    budget_spent    integer     NOT NULL DEFAULT 0,
    not_modified    integer     NOT NULL DEFAULT 0,
    retries         integer     NOT NULL DEFAULT 0,
    deferrals       integer     NOT NULL DEFAULT 0,
    rate_limit_remaining integer,
    error           text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (dag_id, run_id, repository),
    FOREIGN KEY (dag_id, run_id) REFERENCES sync_runs (dag_id, run_id) ON DELETE CASCADE
);

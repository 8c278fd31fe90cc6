-- 0004: the rate-limit budget of every credential, shared by every worker process.
--
-- GitHub counts a credential's primary budget and its secondary-limit pauses per account,
-- however many Celery workers use it; github_sync.github.shared_budget.PostgresBudget keeps
-- that state here so N workers together never spend below the reserve. credential_key is
-- the credential's non-secret key (a hash or an id): no token is ever stored.
--
-- These are not part of the sync's transactions: the store writes them in short statements
-- of its own. Nothing here is worth keeping across a reset: truncating them only makes the
-- next requests learn their windows again.

-- The last window GitHub reported per (credential, resource). Newest wins, as in
-- github_sync.github.ratelimit.RateLimitTracker: a later reset, or the same reset with fewer
-- remaining (answers of concurrent requests arrive out of order). The window columns are
-- NULL while a row exists only to be locked by admissions and no answer reported one yet.
CREATE TABLE github_rate_limits (
    credential_key  text        NOT NULL,
    resource        text        NOT NULL,
    window_limit    integer,
    remaining       integer,
    used            integer,
    reset_at        timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (credential_key, resource),
    -- A window is all four values or none.
    CHECK ((window_limit IS NULL) = (reset_at IS NULL)
           AND (remaining IS NULL) = (reset_at IS NULL)
           AND (used IS NULL) = (reset_at IS NULL))
);

-- One row per request admitted and not yet answered (its "in flight" slot). A lease only
-- counts until expires_at, so a worker killed between admission and answer does not hold
-- its slot forever; expired leases are deleted by later admissions of the same resource.
-- holder names the store instance (host, pid, instance) that took it, for an operator.
CREATE TABLE github_rate_limit_leases (
    lease_id        uuid        PRIMARY KEY,
    credential_key  text        NOT NULL,
    resource        text        NOT NULL,
    holder          text        NOT NULL,
    taken_at        timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
-- Admissions count and purge the leases of one (credential, resource) by expiry.
CREATE INDEX github_rate_limit_leases_key_idx
    ON github_rate_limit_leases (credential_key, resource, expires_at);

-- A credential's secondary-limit pause: every request of it waits until paused_until. Only
-- ever moved later (a later pause already set wins); a past value is harmless.
CREATE TABLE github_credential_pauses (
    credential_key  text        PRIMARY KEY,
    paused_until    timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- 0006: missed-delivery recovery, and the relay's in-flight lookup.
--
-- GitHub does not retry a failed webhook delivery; it keeps deliveries for 3 days and lets
-- the hook's owner list them and ask for a redelivery
-- (https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks).
-- The relay compares that list with webhook_deliveries and asks for the missing ones
-- (github_sync.webhooks.relay.recovery). One row per configured hook ("org:acme:42",
-- "repo:acme/app", "app"): how far its deliveries have been compared, so a restart resumes
-- and a gap longer than GitHub's retention is noticed.
CREATE TABLE webhook_recovery (
    target                  text        PRIMARY KEY,
    -- The relay's first scan (its database clock): what GitHub sent before is not its business.
    compare_from            timestamptz NOT NULL,
    -- GitHub's delivered_at of the newest delivery compared (GitHub's clock); NULL: none yet.
    compared_through        timestamptz,
    -- The hook id, fixed once known (configured, or the first stored delivery's X-GitHub-Hook-ID).
    hook_id                 bigint,
    -- The relay's clock: a previous scan older than GitHub's retention means a gap.
    last_scan_at            timestamptz NOT NULL,
    -- A gap was found after this scan and its incremental sync is not triggered yet.
    gap_since               timestamptz,
    last_error              text,
    redeliveries_requested  bigint      NOT NULL DEFAULT 0,
    syncs_triggered         bigint      NOT NULL DEFAULT 0
);

-- One row per delivery the relay asked GitHub to redeliver: how often, and which attempt it
-- asked for last and when (an attempt already asked for is not asked for again soon).
CREATE TABLE webhook_redelivery_requests (
    target              text        NOT NULL REFERENCES webhook_recovery (target) ON DELETE CASCADE,
    delivery_guid       text        NOT NULL,
    -- Requests GitHub answered (202, or refused for good).
    requests            integer     NOT NULL DEFAULT 0,
    -- Requests that failed otherwise (5xx after retries, an unexpected status).
    failures            integer     NOT NULL DEFAULT 0,
    -- The attempt asked for last (0: none answered yet).
    last_requested_id   bigint      NOT NULL DEFAULT 0,
    requested_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, delivery_guid)
);

-- Which kind of hook sent a delivery (X-GitHub-Hook-Installation-Target-Type: organization,
-- repository, integration): recovery of a hook configured without its id takes the id
-- (X-GitHub-Hook-ID, already stored) of the first delivery of that kind it finds.
ALTER TABLE webhook_deliveries ADD COLUMN hook_target_type text;
CREATE INDEX webhook_deliveries_hook_idx ON webhook_deliveries (hook_target_type, received_at)
    WHERE hook_target_type IS NOT NULL;

-- The forwarder asks on every pass whether a webhook run is in flight (rows forwarded
-- recently, github_sync.webhooks.relay.store.DeliveryStore.in_flight_wait_left).
CREATE INDEX webhook_deliveries_in_flight_idx ON webhook_deliveries (forwarded_at) WHERE status = 'forwarded';

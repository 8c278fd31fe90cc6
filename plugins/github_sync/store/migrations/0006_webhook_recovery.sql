-- 0006: missed-delivery recovery, and the relay's in-flight lookup.
--
-- GitHub does not retry a failed webhook delivery; it keeps deliveries for 3 days and lets
-- the hook's owner list them and ask for a redelivery
-- (https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks).
-- The relay compares that list with webhook_deliveries and asks for the missing ones
-- (github_sync.webhooks.relay.recovery). One row per configured hook ("org:acme:42",
-- "repo:acme/app:7", "app"): how far its deliveries have been compared, so a restart resumes
-- and a gap longer than GitHub's retention is noticed.
CREATE TABLE webhook_recovery (
    target                  text        PRIMARY KEY,
    -- Deliveries sent before the relay's first scan of the hook are not its business.
    compare_from            timestamptz NOT NULL,
    -- GitHub's delivery ids increase: every delivery up to this id has been compared.
    compared_through_id     bigint      NOT NULL DEFAULT 0,
    -- The relay's clock: a scan older than GitHub's retention (3 days) means a gap.
    last_scan_at            timestamptz NOT NULL,
    last_error              text,
    redeliveries_requested  bigint      NOT NULL DEFAULT 0,
    syncs_triggered         bigint      NOT NULL DEFAULT 0
);

-- One row per delivery the relay asked GitHub to redeliver, so that a delivery whose
-- redelivery fails again is asked for a bounded number of times, not on every scan.
CREATE TABLE webhook_redelivery_requests (
    target          text        NOT NULL REFERENCES webhook_recovery (target) ON DELETE CASCADE,
    delivery_guid   text        NOT NULL,
    requests        integer     NOT NULL DEFAULT 1,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, delivery_guid)
);

-- Which kind of hook sent a delivery (X-GitHub-Hook-Installation-Target-Type: organization,
-- repository, integration): recovery of a hook configured without its id takes the id
-- (X-GitHub-Hook-ID, already stored) of the latest delivery of that kind.
ALTER TABLE webhook_deliveries ADD COLUMN hook_target_type text;

-- The forwarder asks on every pass whether a webhook run is in flight (rows forwarded
-- recently, github_sync.webhooks.relay.store.DeliveryStore.in_flight_wait_left).
CREATE INDEX webhook_deliveries_in_flight_idx ON webhook_deliveries (forwarded_at) WHERE status = 'forwarded';

-- 0002: lookups the webhook relay makes on every forwarding pass.
--
-- The relay finds deliveries by the DAG run they were assigned to (retrying a batch after a
-- timeout or a restart, marking it forwarded), and looks for assigned-but-unforwarded
-- batches; webhook_deliveries keeps every delivery as history, so without these indexes each
-- pass would scan the whole table.
CREATE INDEX webhook_deliveries_dag_run_idx ON webhook_deliveries (dag_run_id);
CREATE INDEX webhook_deliveries_pending_assigned_idx ON webhook_deliveries (received_at)
    WHERE status = 'pending' AND dag_run_id IS NOT NULL;

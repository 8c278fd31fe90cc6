-- 0005: which shard (mapped task) synced each repository of a run.
--
-- Large runs group repositories into shards (github_sync.sync.shards): a bounded number of
-- mapped tasks, each syncing its repositories a few at a time. The status plugin shows which
-- repository each shard is on; the label is the task's name in the Airflow UI (the
-- repository's own name for a one-repository shard). NULL for rows written before sharding.
ALTER TABLE sync_repository_runs ADD COLUMN shard text;

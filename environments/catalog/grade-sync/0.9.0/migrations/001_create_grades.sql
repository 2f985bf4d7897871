CREATE TABLE IF NOT EXISTS grade_sync.synced_grades (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id text NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now()
);

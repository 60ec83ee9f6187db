"""A create is one statement: charge the daily quota, insert the job, notify the dispatchers.

Done as three statements in a transaction, a create costs five round trips to PostgreSQL
(BEGIN, the quota upsert, the insert, the NOTIFY, COMMIT) during which its web process, which
runs its sync code on one thread, serves no one else. The function does the same in one.
The job arrives as JSON and is read with jsonb_populate_record, so the function names no
column of the job table and needs no change when the model gains one.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION generation_enqueue_job(job jsonb, daily_limit integer, channel text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    charged integer;
BEGIN
    -- The upsert takes the usage row's lock, so the test against the limit and the increment
    -- are one step however many requests of one user arrive at once.
    INSERT INTO generation_dailygenerationusage (user_id, day, used)
    SELECT (job->>'user_id')::bigint, (job->>'quota_day')::date, 1 WHERE daily_limit >= 1
    ON CONFLICT (user_id, day) DO UPDATE SET used = generation_dailygenerationusage.used + 1
    WHERE generation_dailygenerationusage.used < daily_limit
    RETURNING used INTO charged;
    IF charged IS NULL THEN
        RETURN NULL;  -- the day is used up: nothing charged, nothing inserted
    END IF;
    INSERT INTO generation_videojob
    SELECT * FROM jsonb_populate_record(NULL::generation_videojob, job);
    PERFORM pg_notify(channel, job->>'id');
    RETURN charged;
END $$;
"""

DROP = "DROP FUNCTION IF EXISTS generation_enqueue_job(jsonb, integer, text);"


class Migration(migrations.Migration):
    dependencies = [("generation", "0002_videojob_queued_index")]

    operations = [migrations.RunSQL(CREATE, DROP)]

-- Session duration and energy per finished charging session (last 30 days), one row per transaction.
-- Events arrive at least once, so each side is reduced to one row per (charger, transaction) first.
WITH started AS (
    SELECT charger_id,
           data.transaction_id AS transaction_id,
           min(from_iso8601_timestamp(data.started_at)) AS started_at,
           min(data.meter_start_wh) AS meter_start_wh
    FROM transaction_started
    -- a session ending in the window may have started before it
    WHERE dt >= date_format(current_date - INTERVAL '32' DAY, '%Y-%m-%d')
    GROUP BY 1, 2
),
ended AS (
    SELECT charger_id,
           data.transaction_id AS transaction_id,
           max(from_iso8601_timestamp(data.stopped_at)) AS stopped_at,
           max(data.meter_stop_wh) AS meter_stop_wh,
           arbitrary(data.stop_reason) AS stop_reason
    FROM transaction_ended
    WHERE dt >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
    GROUP BY 1, 2
)
SELECT e.charger_id,
       e.transaction_id,
       s.started_at,
       e.stopped_at,
       round(date_diff('second', s.started_at, e.stopped_at) / 60.0, 1) AS duration_minutes,
       e.meter_stop_wh - s.meter_start_wh AS energy_wh,
       e.stop_reason
FROM ended e
JOIN started s ON s.charger_id = e.charger_id AND s.transaction_id = e.transaction_id
ORDER BY e.stopped_at DESC

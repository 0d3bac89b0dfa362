-- Utilization per charger over the last 7 days: share of time a charging session was in progress.
-- Sessions are clipped to the window; a session whose end event is missing counts for at most 24 hours.
WITH win AS (
    SELECT current_timestamp - INTERVAL '7' DAY AS window_start, current_timestamp AS window_end
),
started AS (
    SELECT charger_id,
           data.transaction_id AS transaction_id,
           min(from_iso8601_timestamp(data.started_at)) AS started_at,
           min(data.meter_start_wh) AS meter_start_wh
    FROM transaction_started
    WHERE dt >= date_format(current_date - INTERVAL '9' DAY, '%Y-%m-%d')
    GROUP BY 1, 2
),
ended AS (
    SELECT charger_id,
           data.transaction_id AS transaction_id,
           max(from_iso8601_timestamp(data.stopped_at)) AS stopped_at,
           max(data.meter_stop_wh) AS meter_stop_wh
    FROM transaction_ended
    WHERE dt >= date_format(current_date - INTERVAL '8' DAY, '%Y-%m-%d')
    GROUP BY 1, 2
),
sessions AS (
    SELECT s.charger_id,
           greatest(s.started_at, w.window_start) AS from_ts,
           least(coalesce(e.stopped_at, s.started_at + INTERVAL '1' DAY), w.window_end) AS to_ts,
           e.meter_stop_wh - s.meter_start_wh AS energy_wh
    FROM started s
    CROSS JOIN win w
    LEFT JOIN ended e ON e.charger_id = s.charger_id AND e.transaction_id = s.transaction_id
),
chargers AS (
    SELECT charger_id FROM status WHERE dt >= date_format(current_date - INTERVAL '7' DAY, '%Y-%m-%d')
    UNION
    SELECT charger_id FROM sessions
)
SELECT c.charger_id,
       count(x.charger_id) AS sessions,
       round(coalesce(sum(date_diff('second', x.from_ts, x.to_ts)), 0) / (7 * 86400.0) * 100, 2)
           AS utilization_pct,
       round(coalesce(sum(x.energy_wh), 0) / 1000.0, 3) AS energy_kwh
FROM chargers c
LEFT JOIN sessions x ON x.charger_id = c.charger_id AND x.to_ts > x.from_ts
GROUP BY c.charger_id
ORDER BY utilization_pct DESC

-- Fault frequency per charger and error code over the last 30 days (status changes to "faulted").
SELECT charger_id,
       coalesce(data.error_code, 'unknown') AS error_code,
       count(DISTINCT event_id) AS faults,
       min(from_iso8601_timestamp(received_at)) AS first_seen,
       max(from_iso8601_timestamp(received_at)) AS last_seen
FROM status
WHERE dt >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
  AND data.status = 'faulted'
GROUP BY 1, 2
ORDER BY faults DESC

-- Bonus abuse: many new accounts from one device (multi-accounting).

CREATE TABLE multi_accounting_device WITH (
    KAFKA_TOPIC='cep.alerts', SEVERITY='high', OWNER='bonus-abuse',
    TAGS=['multi_accounting'],
    DESCRIPTION='Three or more accounts created from one device within two hours'
) AS
SELECT device_id, COUNT_DISTINCT(account_id) AS accounts,
       COLLECT_SET(promo_code) AS promo_codes, WINDOWSTART AS window_start
FROM gaming_events
WINDOW HOPPING (SIZE 2 HOURS, ADVANCE BY 30 MINUTES, GRACE PERIOD 1 MINUTE)
WHERE event_type = 'account_create'
GROUP BY device_id
HAVING COUNT_DISTINCT(account_id) >= 3
EMIT FINAL;

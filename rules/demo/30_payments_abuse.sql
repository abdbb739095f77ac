-- Money movement: deposits with many instruments, and chip dumping at the
-- poker table.

CREATE TABLE deposit_instrument_velocity WITH (
    KAFKA_TOPIC='cep.alerts', SEVERITY='high', OWNER='payments-risk',
    TAGS=['deposit_velocity'],
    DESCRIPTION='Deposits with four or more distinct instruments within 30 minutes'
) AS
SELECT account_id, COUNT(*) AS deposits, COUNT_DISTINCT(instrument_id) AS instruments,
       SUM(amount_minor) AS total_minor, WINDOWSTART AS window_start
FROM gaming_events
WINDOW SESSION (30 MINUTES, GRACE PERIOD 1 MINUTE)
WHERE event_type = 'deposit'
GROUP BY account_id
HAVING COUNT_DISTINCT(instrument_id) >= 4
EMIT FINAL;

CREATE TABLE chip_dumping_pair WITH (
    KAFKA_TOPIC='cep.alerts', KEY_FORMAT='JSON', SEVERITY='medium', OWNER='poker-integrity',
    TAGS=['chip_dumping'],
    DESCRIPTION='One player loses four or more big pots without showdown to the same opponent within an hour'
) AS
SELECT loser_id, winner_id, COUNT(*) AS hands, SUM(pot_minor) AS pot_total_minor,
       WINDOWSTART AS window_start
FROM gaming_events
WINDOW TUMBLING (SIZE 1 HOUR, GRACE PERIOD 1 MINUTE)
WHERE event_type = 'hand_result' AND showdown = false AND pot_minor >= 10000
GROUP BY loser_id, winner_id
HAVING COUNT(*) >= 4
EMIT FINAL;

CREATE STREAM large_withdrawal WITH (
    KAFKA_TOPIC='cep.alerts', SEVERITY='low', OWNER='payments-risk',
    TAGS=['large_withdrawal'],
    DESCRIPTION='A single withdrawal request of 1000.00 or more'
) AS
SELECT account_id, event_id, amount_minor, currency, method, ip, country
FROM gaming_events
WHERE event_type = 'withdrawal_request' AND amount_minor >= 100000
PARTITION BY account_id;

-- Velocity at every deposit (sliding window): the fifth deposit of an
-- account within ten minutes, with three or more instruments, alerts at once.
CREATE STREAM deposit_velocity_sliding WITH (
    KAFKA_TOPIC='cep.alerts', SEVERITY='medium', OWNER='payments-risk',
    TAGS=['deposit_velocity'],
    DESCRIPTION='Five or more deposits with three or more instruments by one account within the ten minutes before a deposit'
) AS
SELECT account_id, deposits, instruments, total_minor FROM (
    SELECT account_id,
           COUNT(*) OVER (PARTITION BY account_id ORDER BY event_time
                          RANGE BETWEEN INTERVAL '10' MINUTES PRECEDING AND CURRENT ROW) AS deposits,
           COUNT_DISTINCT(instrument_id) OVER (PARTITION BY account_id ORDER BY event_time
                          RANGE BETWEEN INTERVAL '10' MINUTES PRECEDING AND CURRENT ROW) AS instruments,
           SUM(amount_minor) OVER (PARTITION BY account_id ORDER BY event_time
                          RANGE BETWEEN INTERVAL '10' MINUTES PRECEDING AND CURRENT ROW) AS total_minor
    FROM gaming_events WHERE event_type = 'deposit') v
WHERE deposits >= 5 AND instruments >= 3
PARTITION BY account_id;

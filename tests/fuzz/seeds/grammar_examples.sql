-- card payments, keyed by card
CREATE STREAM payments (
    card_id   VARCHAR KEY,
    user_id   INT,
    amount    DECIMAL(12, 2),
    currency  VARCHAR,
    merchant  VARCHAR,
    country   VARCHAR,
    ip        VARCHAR,
    lat       DOUBLE,
    lon       DOUBLE,
    tags      ARRAY<VARCHAR>,
    attrs     MAP<VARCHAR, VARCHAR>,
    device    STRUCT<id VARCHAR, os VARCHAR>,
    ts        BIGINT
) WITH (KAFKA_TOPIC = 'payments', VALUE_FORMAT = 'JSON', TIMESTAMP = 'ts');

/* the seed talk's click stream */
CREATE STREAM clickstream (_time BIGINT, time VARCHAR, ip VARCHAR, request VARCHAR,
                           status INT, userid INT, bytes BIGINT, agent VARCHAR)
    WITH (KAFKA_TOPIC='clickstream', VALUE_FORMAT='JSON');

CREATE TABLE users (user_id INT PRIMARY KEY, name VARCHAR, risk_score INT)
    WITH (KAFKA_TOPIC = 'users', FORMAT = 'JSON');

-- the seed talk's errors_per_min_alert, unchanged
CREATE TABLE errors_per_min_alert WITH (KAFKA_TOPIC =
'errors_per_min_alert') AS
SELECT
status AS k1,
AS_VALUE(status) AS status,
WINDOWSTART AS EVENT_TS,
COUNT(*) AS errors
FROM clickstream WINDOW HOPPING (SIZE 60 SECOND, ADVANCE BY 20 SECOND)
WHERE status > 400
GROUP BY status
HAVING COUNT(*) > 5 AND COUNT(*) IS NOT NULL;

CREATE TABLE card_velocity WITH (SEVERITY = 'high', OWNER = 'fraud-team',
                                  TAGS = ('velocity', 'card'),
                                  DESCRIPTION = 'more than 5 payments on a card in 10 minutes') AS
    SELECT card_id, COUNT(*) AS n, SUM(amount) AS total,
           WINDOWSTART AS window_start, WINDOWEND AS window_end
    FROM payments
    WINDOW TUMBLING (SIZE 10 MINUTES, GRACE PERIOD 30 SECONDS, RETENTION 1 DAY)
    GROUP BY card_id
    HAVING COUNT(*) > 5
    EMIT FINAL;

CREATE TABLE card_sessions AS
    SELECT card_id, COUNT(*) AS n, COLLECT_SET(merchant) AS merchants
    FROM payments p WINDOW SESSION (5 MINUTES)
    GROUP BY card_id
    EMIT CHANGES;

CREATE STREAM big_foreign_payments WITH (SEVERITY = 'medium', MODE = 'shadow') AS
    SELECT card_id,
           amount * 100 AS cents,
           UCASE(country) || '/' || currency AS where_what,
           CASE WHEN amount >= 1000 THEN 'large' WHEN amount >= 100 THEN 'medium' ELSE 'small' END AS size,
           CAST(amount AS DOUBLE) AS amount_d,
           tags[1] AS first_tag,
           attrs['channel'] AS channel,
           device->os AS os,
           ARRAY[country, currency] AS pair,
           MAP('k' := merchant) AS m,
           STRUCT(c := country, n := 1) AS s,
           INTERVAL '5' MINUTES AS five_minutes,
           GEO_DISTANCE(lat, lon, 48.8566, 2.3522, 'KM') AS km_from_paris
    FROM payments AS p
    WHERE p.amount > 500.00
      AND country NOT IN ('FR', 'BE')
      AND merchant NOT LIKE 'test!_%' ESCAPE '!'
      AND NOT (currency IS NULL OR ip IS NOT DISTINCT FROM '127.0.0.1')
      AND user_id BETWEEN 1 AND 1000000
      AND REGEXP_LIKE(ip, '^10\.');

INSERT INTO big_foreign_payments
    SELECT card_id, amount * 100, country || '/' || currency, 'huge', CAST(amount AS DOUBLE),
           tags[-1], attrs['channel'], device->os, ARRAY[country], MAP('k' := merchant),
           STRUCT(c := country, n := 2), INTERVAL 1 HOUR, 0.0E0
    FROM payments
    WHERE amount > 100000;

CREATE STREAM payments_by_user AS
    SELECT user_id, card_id, amount FROM payments PARTITION BY user_id;

-- contextual keywords, type names and units are ordinary names elsewhere
CREATE STREAM audit (key VARCHAR, size INT, session VARCHAR, second BIGINT, "WHERE" VARCHAR)
    WITH (KAFKA_TOPIC = 'audit', VALUE_FORMAT = 'JSON');
CREATE STREAM audit_copy AS SELECT key, size window_size, session, second, "WHERE" FROM audit final;

CREATE STREAM payment_facts AS
    SELECT card_id,
           INITCAP(LCASE(merchant)) AS merchant_name, LEN(merchant) AS merchant_len,
           TRIM(currency) AS c1, LTRIM(currency) AS c2, RTRIM(currency) AS c3,
           SUBSTRING(ip, 1, 3) AS ip_prefix, CONCAT(country, '-', currency) AS cc,
           CONCAT_WS('-', country, currency) AS cc2, REPLACE(merchant, 'ltd', 'LTD') AS m2,
           INSTR(merchant, 'shop') AS shop_at, SPLIT(ip, '.') AS octets,
           ABS(amount) AS a1, CEIL(amount) AS a2, FLOOR(amount) AS a3, ROUND(lat, 2) AS lat2,
           EXP(1) AS e, LN(2) AS ln2, SQRT(lat) AS sq, SIGN(lon) AS sg, POWER(2, 10) AS p,
           REGEXP_EXTRACT('([0-9]+)', ip, 1) AS first_octet,
           REGEXP_EXTRACT_ALL('[0-9]+', ip) AS all_octets,
           REGEXP_REPLACE(ip, '[0-9]', 'x') AS masked,
           REGEXP_SPLIT_TO_ARRAY(ip, '\.') AS octets2,
           ARRAY_CONTAINS(tags, 'vip') AS vip, ARRAY_LENGTH(tags) AS ntags,
           COALESCE(currency, 'EUR') AS cur, IFNULL(country, '??') AS ctry,
           NULLIF(country, 'XX') AS ctry2, UPPER(LOWER(merchant)) AS m3
    FROM payments;

CREATE STREAM json_and_time AS
    SELECT card_id,
           EXTRACTJSONFIELD(attrs['raw'], '$.device.id') AS device_id,
           JSON_ARRAY_LENGTH(attrs['items']) AS n_items,
           JSON_RECORDS(attrs['raw']) AS raw_fields,
           TIMESTAMPTOSTRING(ts, 'yyyy-MM-dd HH:mm:ss', 'UTC') AS ts_text,
           STRINGTOTIMESTAMP(attrs['when'], 'yyyy-MM-dd') AS when_ms,
           FROM_UNIXTIME(ts) AS ts_ts,
           UNIX_TIMESTAMP(ts) AS ts_ms,
           UNIX_TIMESTAMP() AS now_ms
    FROM payments;

CREATE TABLE user_profile AS
    SELECT user_id,
           COUNT(*) AS n, COUNT(merchant) AS n_merchant, COUNT(DISTINCT country) AS n_countries,
           COUNT_DISTINCT(ip) AS n_ips, SUM(amount) AS total, MIN(amount) AS smallest,
           MAX(amount) AS largest, AVG(amount) AS mean,
           LATEST_BY_OFFSET(country) AS last_country, LATEST_BY_OFFSET(ip, 3) AS last_ips,
           EARLIEST_BY_OFFSET(country, 2, TRUE) AS first_countries,
           COLLECT_LIST(merchant) AS merchants, COLLECT_SET(currency) AS currencies,
           TOPK(amount, 3) AS top3, TOPK(amount, merchant, 3) AS top3_where,
           TOPKDISTINCT(merchant, 2) AS top_merchants
    FROM payments
    GROUP BY user_id;

-- the seed talk's user_ip_activity, unchanged
CREATE STREAM user_clickstream (userid INT, username VARCHAR, ip VARCHAR, city VARCHAR, request VARCHAR, status INT, bytes BIGINT) WITH (KAFKA_TOPIC='user_clickstream', VALUE_FORMAT='JSON');
-- Enriched user details table:
-- Aggregate (count&groupBy) using a TABLE-Window
CREATE TABLE user_ip_activity WITH (KEY_FORMAT = 'JSON',
KAFKA_TOPIC = 'user_ip_activity') AS
SELECT
username AS k1,
ip AS k2,
city AS k3,
AS_VALUE(username) AS username,
WINDOWSTART AS EVENT_TS,
AS_VALUE(ip) AS ip,
AS_VALUE(city) AS city,
COUNT(*) AS count
FROM user_clickstream WINDOW TUMBLING (SIZE 60 SECOND)
GROUP BY username, ip, city
HAVING COUNT(*) > 1;

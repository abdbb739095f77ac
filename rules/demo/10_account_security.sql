-- Account security: password guessing against one account, and one IP
-- trying many accounts (credential stuffing).

CREATE TABLE failed_login_burst WITH (
    KAFKA_TOPIC='cep.alerts', SEVERITY='high', OWNER='trust-and-safety',
    TAGS=['account_takeover'],
    DESCRIPTION='Five or more failed logins on one account within ten minutes'
) AS
SELECT account_id, COUNT(*) AS failures, COUNT_DISTINCT(ip) AS ips,
       WINDOWSTART AS window_start
FROM gaming_events
WINDOW TUMBLING (SIZE 10 MINUTES, GRACE PERIOD 1 MINUTE)
WHERE event_type = 'login' AND status = 'bad_password'
GROUP BY account_id
HAVING COUNT(*) >= 5
EMIT FINAL;

CREATE TABLE credential_stuffing_ip WITH (
    KAFKA_TOPIC='cep.alerts', SEVERITY='critical', OWNER='trust-and-safety',
    TAGS=['credential_stuffing'],
    DESCRIPTION='One IP fails logins on ten or more accounts within ten minutes'
) AS
SELECT ip, COUNT_DISTINCT(account_id) AS accounts, COUNT(*) AS failures,
       WINDOWSTART AS window_start
FROM gaming_events
WINDOW TUMBLING (SIZE 10 MINUTES, GRACE PERIOD 1 MINUTE)
WHERE event_type = 'login' AND status <> 'ok'
GROUP BY ip
HAVING COUNT_DISTINCT(account_id) >= 10
EMIT FINAL;

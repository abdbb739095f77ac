-- Sequences (MATCH_RECOGNIZE): account takeover as it happens, step by step.

CREATE STREAM account_takeover_chain WITH (
    KAFKA_TOPIC='cep.alerts', SEVERITY='critical', OWNER='trust-and-safety',
    TAGS=['account_takeover'],
    DESCRIPTION='Failed logins, a login from a new device, a credential change and a withdrawal, within one hour'
) AS
SELECT * FROM gaming_events MATCH_RECOGNIZE (
    PARTITION BY account_id
    ORDER BY event_time
    MEASURES
        FIRST(F.event_time) AS first_failure,
        COUNT(F.event_id) AS failures,
        L.ip AS login_ip,
        L.country AS login_country,
        C.what AS changed,
        W.amount_minor AS withdrawal_minor,
        W.event_time AS withdrawal_time
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (F{3,} L X*? C Y*? W) WITHIN INTERVAL '1' HOUR
    DEFINE
        F AS event_type = 'login' AND status = 'bad_password',
        L AS event_type = 'login' AND status = 'ok' AND new_device = true,
        X AS event_type <> 'withdrawal_request',
        C AS event_type = 'credential_change',
        Y AS event_type <> 'login',
        W AS event_type = 'withdrawal_request'
)
PARTITION BY account_id;

-- Absence (cep's extension): a welcome bonus taken, and no bet placed in the
-- next 30 minutes, then a withdrawal request: bonus abuse that never plays.
CREATE STREAM bonus_without_play WITH (
    KAFKA_TOPIC='cep.alerts', SEVERITY='medium', OWNER='bonus-abuse',
    TAGS=['bonus_abuse'],
    DESCRIPTION='A welcome bonus claimed and no bet within 30 minutes'
) AS
SELECT * FROM gaming_events MATCH_RECOGNIZE (
    PARTITION BY account_id
    ORDER BY event_time
    MEASURES C.event_time AS claimed_at, C.amount_minor AS bonus_minor
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (C) NOT FOLLOWED BY B WITHIN INTERVAL '30' MINUTES
    DEFINE
        C AS event_type = 'bonus_claim' AND bonus_type = 'welcome',
        B AS event_type = 'bet'
)
PARTITION BY account_id;

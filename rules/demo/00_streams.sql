-- The gaming event stream of ../shared/schemas/EVENTS.md (topic gaming.events).
-- Only the fields the demo rules read are declared; others are ignored.
CREATE STREAM gaming_events (
    account_id VARCHAR,
    event_id VARCHAR,
    event_type VARCHAR,
    event_time BIGINT,
    tenant VARCHAR,
    device_id VARCHAR,
    ip VARCHAR,
    country VARCHAR,
    status VARCHAR,
    new_device BOOLEAN,
    what VARCHAR,
    amount_minor BIGINT,
    currency VARCHAR,
    instrument_id VARCHAR,
    method VARCHAR,
    promo_code VARCHAR,
    bonus_type VARCHAR,
    winner_id VARCHAR,
    loser_id VARCHAR,
    pot_minor BIGINT,
    showdown BOOLEAN
) WITH (KAFKA_TOPIC='gaming.events', VALUE_FORMAT='JSON', TIMESTAMP='event_time');

-- The gaming event stream of ../shared/schemas/EVENTS.md (topic gaming.events).
-- Only the fields the demo rules read are declared; others are ignored.
-- Events are keyed by account_id (KEY): rules per account run on the topic's
-- partitions as they are; rules per device, IP or player pair are re-keyed.
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
) WITH (KAFKA_TOPIC='gaming.events', VALUE_FORMAT='JSON', TIMESTAMP='event_time', KEY='account_id');

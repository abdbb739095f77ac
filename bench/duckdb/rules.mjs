// The rule set of the comparison: N windowed aggregations over the gaming
// events, each written twice — as a cep rule (ksqlDB SQL) and as the DuckDB
// query that computes the same rows. Rules vary by event type, grouping key,
// window size, aggregates and threshold, so no two are the same.
//
// What "the same rows" means: per rule, one row per (key, window start)
// whose group passes HAVING, with the aggregate values. cep's rules EMIT
// CHANGES, so a group's row is its last update (counts and sums of positive
// amounts only grow: a group that passed HAVING never fails it again);
// DuckDB's is GROUP BY ... HAVING. ksqlDB drops rows whose grouping key is
// null, so the DuckDB side filters them out.

const TYPES_WITH_AMOUNT = ['deposit', 'withdrawal_request', 'purchase']; // the types that carry amount_minor
const TYPES = ['login', 'bet', 'deposit', 'bet_settle', 'withdrawal_request', 'purchase', 'bonus_claim', 'hand_result'];
const KEYS = ['account_id', 'device_id', 'ip'];
const MINUTES = [5, 10, 30, 60];

export const STREAM_SQL = `CREATE STREAM gaming_events (
  account_id VARCHAR, device_id VARCHAR, ip VARCHAR, event_type VARCHAR,
  event_time BIGINT, amount_minor BIGINT
) WITH (KAFKA_TOPIC='gaming.events', VALUE_FORMAT='JSON', TIMESTAMP='event_time', KEY='account_id');
`;

// The columns DuckDB reads: the same the cep stream declares.
export const DUCK_COLUMNS =
  "{account_id: 'VARCHAR', device_id: 'VARCHAR', ip: 'VARCHAR', event_type: 'VARCHAR', event_time: 'BIGINT', amount_minor: 'BIGINT'}";

export function makeRules(n) {
  const rules = [];
  for (let i = 0; i < n; i++) {
    const shape = i % 3; // 0: COUNT; 1: COUNT and SUM(amount); 2: COUNT and COUNT_DISTINCT(ip or account)
    const type = shape === 1 ? TYPES_WITH_AMOUNT[(i >> 2) % TYPES_WITH_AMOUNT.length] : TYPES[(i >> 1) % TYPES.length];
    const key = KEYS[(i >> 3) % KEYS.length];
    const minutes = MINUTES[(i >> 4) % MINUTES.length];
    const size = minutes * 60000;
    // longer windows hold more events: thresholds grow with the window (2-6 at 5 minutes, 7-21 at an hour)
    const threshold = Math.round((2 + ((i * 7) % 5)) * Math.sqrt(minutes / 5));
    const distinct = key === 'ip' ? 'account_id' : 'ip';
    const name = `R${String(i).padStart(4, '0')}_${type}_${key}_${minutes}m`.toUpperCase();
    const cepAggs = ['COUNT(*) AS n'];
    const duckAggs = ['COUNT(*) AS n'];
    if (shape === 1) {
      cepAggs.push('SUM(amount_minor) AS s');
      duckAggs.push('SUM(amount_minor) AS s');
    } else if (shape === 2) {
      cepAggs.push(`COUNT_DISTINCT(${distinct}) AS d`);
      duckAggs.push(`COUNT(DISTINCT ${distinct}) AS d`);
    }
    const cep =
      `CREATE TABLE ${name} AS SELECT ${key}, ${cepAggs.join(', ')} FROM gaming_events\n` +
      `  WINDOW TUMBLING (SIZE ${minutes} MINUTES, GRACE PERIOD 1 HOUR)\n` +
      `  WHERE event_type = '${type}' GROUP BY ${key} HAVING COUNT(*) >= ${threshold} EMIT CHANGES;\n`;
    const duck =
      `SELECT ${key} AS k, (event_time // ${size}) * ${size} AS ws, ${duckAggs.join(', ')} FROM ev\n` +
      `  WHERE event_type = '${type}' AND ${key} IS NOT NULL GROUP BY ALL HAVING COUNT(*) >= ${threshold}`;
    rules.push({ name, cep, duck, values: duckAggs.map((a) => a.split(' AS ')[1]) });
  }
  return rules;
}

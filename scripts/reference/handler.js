// The plain Node.js forwarder: gunzipSync + JSON.parse, classified as the processor does.
'use strict';
const zlib = require('zlib');

function classify(entry) {
  if (entry.eventType === 'RuleNotFound') return 'RuleNotFound';
  if (entry.eventType === 'RuleMessageThrottled') return 'RuleMessageThrottled';
  const status = String(entry.status ?? '').toLowerCase();
  const level = String(entry.logLevel ?? '').toUpperCase();
  if (status === 'failure' || level === 'ERROR') return 'Failure';
  if (level === 'WARN' || level === 'WARNING') return 'Warning';
  return null;
}

function handler(event) {
  const batch = JSON.parse(zlib.gunzipSync(Buffer.from(event.awslogs.data, 'base64')));
  const counts = {};
  const incidents = [];
  for (const logEvent of batch.logEvents) {
    let category;
    try {
      const entry = JSON.parse(logEvent.message);
      category = entry && typeof entry === 'object' && !Array.isArray(entry) && 'eventType' in entry ? classify(entry) : 'Unparseable';
    } catch (e) {
      category = 'Unparseable';
    }
    if (category) {
      counts[category] = (counts[category] || 0) + 1;
      incidents.push([category, logEvent.id, logEvent.message]);
    }
  }
  return { entries: batch.logEvents.length, byCategory: counts, incidents: incidents.length };
}

module.exports = { handler };

// node handler.js EVENT_FILE RUNS: prints the median milliseconds of RUNS calls and the result.
if (require.main === module) {
  const fs = require('fs');
  const event = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const runs = Number(process.argv[3] || 30);
  const times = [];
  let result;
  for (let i = 0; i < runs + 3; i++) {
    const t0 = process.hrtime.bigint();
    result = handler(event);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (i >= 3) times.push(ms);
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({ medianMs: times[Math.floor(times.length / 2)], result }));
}

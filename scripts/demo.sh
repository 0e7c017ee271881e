#!/usr/bin/env bash
# `make demo`: the whole product on this machine, no AWS account.
#
# A moto server stands in for AWS; the stack is deployed from template.yaml
# through the SAM transform and CloudFormation's CreateStack (moto's); the
# Lambda function runs under the Lambda Runtime API emulation of `cargo lambda
# watch` with the deployed function's environment; the operator's tool finds
# the stack by name; the batches in events/ go through `cargo lambda invoke`; then what an
# operator would see: notifications of incidents opening and resolving,
# entries, the function's own logs and metrics.
# Everything started here is stopped by process id when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/.venv/bin:$PATH"

run_dir=${DEMO_DIR:-$root/.demo}
rm -rf "$run_dir"
mkdir -p "$run_dir"
cli="$root/target/debug/iot-incidents"

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    # Each service runs in its own process group: stop the group.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for_port() {
  local port=$1 what=$2 log=$3
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "$what did not start; its log:" >&2
  tail -20 "$log" >&2
  exit 1
}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# moto binds a free port itself (port 0) and names it: nothing can take it
# in between.
setsid moto_server -H 127.0.0.1 -p 0 </dev/null >"$run_dir/moto.log" 2>&1 &
pids+=($!)
moto_port=""
for _ in $(seq 1 300); do
  moto_port=$(sed -n 's|.*Running on http://127.0.0.1:\([0-9]*\).*|\1|p' "$run_dir/moto.log" | head -1)
  [ -n "$moto_port" ] && break
  sleep 0.2
done
[ -n "$moto_port" ] || { echo "moto_server did not start; its log:" >&2; tail -20 "$run_dir/moto.log" >&2; exit 1; }
wait_for_port "$moto_port" "moto_server" "$run_dir/moto.log"
say "Local AWS endpoint: moto on 127.0.0.1:$moto_port"
# cargo lambda takes its port as given: the nearest thing to binding it.
lambda_port=$(free_port)

export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo-secret-never-logged AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true

quiet_seconds=5

stack="iot-log-monitor-demo"
say "The stack, deployed as users deploy it: template.yaml through the SAM transform and CloudFormation (moto's)"
python3 scripts/local_stack.py deploy --stack "$stack" >"$run_dir/stack.json"
python3 scripts/demo_helpers.py stack "$run_dir/stack.json"
inbox=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["inbox_queue_url"])' "$run_dir/stack.json")
{
  # The deployed function's own environment (GetFunctionConfiguration), with
  # three changes for a local run:
  python3 -c 'import json,sys; [print(f"{k}={v}") for k, v in json.load(open(sys.argv[1]))["environment"].items()]' "$run_dir/stack.json" |
    grep -v -e '^ALERT_TIME_RESERVE_MS=' -e '^RESOLVE_AFTER_SECONDS=' -e '^REOPEN_WINDOW_SECONDS=' -e '^SILENCES_REFRESH_SECONDS='
  # cargo lambda's invocations carry a deadline that is nearly past (not the
  # template's 60 s timeout), so the notify step's time check is off here.
  echo ALERT_TIME_RESERVE_MS=0
  # A short quiet period and no reopen window, so the demo can show
  # incidents resolving within seconds.
  echo RESOLVE_AFTER_SECONDS=$quiet_seconds
  echo REOPEN_WINDOW_SECONDS=0
  # Silences read on every invocation, so the demo's silence (and its end)
  # applies at once rather than up to 30 s later.
  echo SILENCES_REFRESH_SECONDS=0
  printf 'AWS_ENDPOINT_URL=%s\nAWS_ACCESS_KEY_ID=demo\nAWS_SECRET_ACCESS_KEY=demo-secret-never-logged\nAWS_REGION=us-east-1\nAWS_EC2_METADATA_DISABLED=true\nRUST_LOG=info\n' "$AWS_ENDPOINT_URL"
} >"$run_dir/function.env"
# The operator's tool finds everything through the stack's outputs.
export IOT_INCIDENTS_STACK=$stack

say "The function under the Lambda Runtime API (cargo lambda watch, 127.0.0.1:$lambda_port)"
setsid cargo-lambda lambda watch --bin iot-log-processor --invoke-address 127.0.0.1 --invoke-port "$lambda_port" \
  --ignore-changes --env-file "$run_dir/function.env" </dev/null >"$run_dir/lambda.log" 2>&1 &
pids+=($!)
wait_for_port "$lambda_port" "cargo lambda watch" "$run_dir/lambda.log"

invoke() {
  local label=$1 file=$2
  printf '  %-40s ' "$label"
  if cargo-lambda lambda invoke iot-log-processor --invoke-address 127.0.0.1 --invoke-port "$lambda_port" \
      --data-file "$file" </dev/null >"$run_dir/invoke.out" 2>&1; then
    python3 scripts/demo_helpers.py invocation "$run_dir/invoke.out"
  else
    echo "failed (as Lambda would report it): $(grep -m1 -E 'Error|×' "$run_dir/invoke.out" | sed 's/^ *//')"
  fi
  cat "$run_dir/invoke.out" >>"$run_dir/invocations.log"
}

# The recorded lines in events/lines are replayed as fresh ones (their
# timestamps shifted to now), so they land in the query tool's window.
mkdir -p "$run_dir/events"
now_ms=$(python3 -c 'import time; print(int(time.time()*1000))')
for lines in events/lines/*.jsonl; do
  name=$(basename "$lines" .jsonl)
  "$cli" encode --retime --time "$now_ms" --log-stream "$name" --seed "$now_ms" "$lines" >"$run_dir/events/$name.json"
done

say "Batches from events/, as CloudWatch Logs delivers them"
invoke "control message (subscription check)" events/control-message.json
invoke "success traffic" "$run_dir/events/success-traffic.json"
invoke "a missing rule" "$run_dir/events/rule-not-found.json"
invoke "a throttled rule" "$run_dir/events/rule-throttled.json"
invoke "authorization failures" "$run_dir/events/authorization-failures.json"
invoke "a job failure" "$run_dir/events/job-failure.json"
invoke "garbage lines" "$run_dir/events/garbage-lines.json"
invoke "warnings and a new event type" "$run_dir/events/warnings-and-new-types.json"
invoke "the missing rule batch, delivered again" "$run_dir/events/rule-not-found.json"
printf '{"awslogs":{"data":"bm90IGd6aXA="}}' >"$run_dir/broken.json"
invoke "a broken batch (not gzip)" "$run_dir/broken.json"
invoke "the throttled batch again, after it" "$run_dir/events/rule-throttled.json"

say "Notifications that reached the operator's inbox (an SQS queue subscribed to the topic)"
"$cli" local inbox --inbox-url "$inbox" --wait-seconds 3 | tee "$run_dir/notifications.txt"

say "The clock: the schedule's sweep, until the incidents have been quiet for ${quiet_seconds} s"
invoke "a sweep (not quiet yet: nothing resolves)" events/schedule/sweep.json
# The quiet period runs on the wall clock: sweep once a second (as the
# schedule would, only faster) until no incident is open, for at most a minute.
resolved_all=""
for _ in $(seq 1 60); do
  sleep 1
  cargo-lambda lambda invoke iot-log-processor --invoke-address 127.0.0.1 --invoke-port "$lambda_port" \
      --data-file events/schedule/sweep.json </dev/null >"$run_dir/sweep.out" 2>&1 || true
  cat "$run_dir/sweep.out" >>"$run_dir/invocations.log"
  printf '  %-40s ' "a sweep"
  python3 scripts/demo_helpers.py invocation "$run_dir/sweep.out" || cat "$run_dir/sweep.out"
  if python3 scripts/demo_helpers.py all-resolved "$run_dir/sweep.out"; then resolved_all=yes; break; fi
done
[ -n "$resolved_all" ] || { echo "incidents still open after a minute of sweeps" >&2; exit 1; }
invoke "another sweep (nothing left to say)" events/schedule/sweep.json
"$cli" local inbox --inbox-url "$inbox" --wait-seconds 3 | tee "$run_dir/resolved.txt"

say "iot-incidents list --since 1h"
"$cli" --output table list --since 1h --limit 20 | tee "$run_dir/list.txt"
"$cli" --output json list --since 1h --limit 1000 >"$run_dir/list.json"

say "iot-incidents summary --since 6h"
"$cli" --output table summary --since 6h | tee "$run_dir/summary.txt"

trace=$(python3 scripts/demo_helpers.py first-trace "$run_dir/list.json" RuleNotFound)
say "iot-incidents get $trace"
"$cli" --output table get "$trace" | tee "$run_dir/get.txt"

say "iot-incidents incidents --state all"
"$cli" --output table incidents --state all | tee "$run_dir/incidents.txt"
"$cli" --output json incidents --state all >"$run_dir/incidents.json"
incident=$(python3 scripts/demo_helpers.py incident "$run_dir/incidents.json" example_rule)
say "iot-incidents show $incident"
"$cli" --output table show "$incident" | tee "$run_dir/show.txt"

say "A batch that fails every attempt: Lambda's two retries, then its record in the failure queue"
# The broken batch again, as Lambda handles a failed asynchronous invocation
# (EventInvokeConfig: MaximumRetryAttempts 2): three attempts, then the
# invocation record (the event and the last error) goes to the on-failure
# destination. moto cannot run EventInvokeConfig, so the script does what
# Lambda does, with what the three real invocations answered.
: >"$run_dir/attempts.out"
for attempt in 1 2 3; do
  invoke "the broken batch, attempt $attempt" "$run_dir/broken.json"
  cat "$run_dir/invoke.out" >>"$run_dir/attempts.out"
done
python3 scripts/demo_helpers.py send-failure-record "$run_dir/stack.json" "$run_dir/broken.json" "$run_dir/invoke.out" 3
"$cli" redrive --dry-run | tee "$run_dir/redrive-dry-run.txt"
# It can never be processed: redrive tries, keeps it and exits 1.
if "$cli" redrive >"$run_dir/redrive.txt" 2>"$run_dir/redrive.err"; then
  echo "redrive processed a batch that cannot be processed" >&2; exit 1
fi
sed 's/^/  /' "$run_dir/redrive.txt" "$run_dir/redrive.err"

say "A silence (maintenance of gateway-9): iot-incidents silence --rule legacy_rule --for 1h"
silence=$("$cli" silence --rule legacy_rule --for 1h --reason "decommissioning gateway-9")
echo "  $silence"
"$cli" --output table silences | tee "$run_dir/silences.txt"

say "The silenced rule fails again: its incident opens, its notification is held back"
cat >"$run_dir/failed-lines.jsonl" <<LINES
{"timestamp":"2026-01-01 00:00:00.000","logLevel":"ERROR","traceId":"9f1c7e20-demo-4c1e-8d7a-00000000redr","accountId":"123456789012","status":"Failure","eventType":"RuleNotFound","clientId":"gateway-9","topicName":"\$aws/rules/legacy_rule","ruleName":"legacy_rule","reason":"RuleNotFound","details":"Rule legacy_rule not found"}
LINES
"$cli" encode --retime --time "$now_ms" --log-stream gateway-9 --seed 7 "$run_dir/failed-lines.jsonl" >"$run_dir/events/legacy.json"
invoke "a legacy_rule batch (silenced)" "$run_dir/events/legacy.json"
"$cli" --output json incidents >"$run_dir/open.json"
legacy=$(python3 scripts/demo_helpers.py incident "$run_dir/open.json" legacy_rule)
"$cli" local inbox --inbox-url "$inbox" --wait-seconds 1 | tee "$run_dir/silenced-inbox.txt"
"$cli" --output table show "$legacy" | tee "$run_dir/show-silenced.txt"

say "The silence ends: iot-incidents unsilence $silence; the next sweep sends what it held back"
"$cli" unsilence "$silence"
invoke "a sweep after the silence ended" events/schedule/sweep.json
"$cli" local inbox --inbox-url "$inbox" --wait-seconds 3 | tee "$run_dir/released.txt"

say "iot-incidents ack $legacy: no more reminders (its resolved notification still goes out)"
"$cli" ack "$legacy" --by demo --note "gateway-9 is being retired"
"$cli" --output table show "$legacy" | grep -E 'acknowledged|held back' | tee "$run_dir/show-acked.txt"

say "iot-incidents trace: one message, from the log lines AWS IoT wrote (CloudWatch Logs on moto)"
# What AWS IoT logged for gateway-9's message: its publish (a success, which
# the subscription filter does not pass), then the missing rule.
{
  printf '{"timestamp":"2025-12-31 23:59:59.970","logLevel":"INFO","traceId":"9f1c7e20-demo-4c1e-8d7a-00000000redr","accountId":"123456789012","status":"Success","eventType":"Publish-In","protocol":"MQTT","topicName":"$aws/rules/legacy_rule","clientId":"gateway-9","principalId":"p","sourceIp":"203.0.113.9","sourcePort":50321}\n'
  cat "$run_dir/failed-lines.jsonl"
} >"$run_dir/trace-lines.jsonl"
"$cli" encode --retime --time "$now_ms" --log-stream gateway-9 --seed 8 "$run_dir/trace-lines.jsonl" >"$run_dir/trace-event.json"
"$cli" local put-logs "$run_dir/trace-event.json"
"$cli" --output table trace 9f1c7e20-demo-4c1e-8d7a-00000000redr | tee "$run_dir/trace.txt"

say "The function's own log: one summary line per invocation"
grep -E 'batch processed|batch failed' "$run_dir/lambda.log" | sed -E 's/^.*\}: //' >"$run_dir/summaries.txt"
cut -c1-200 "$run_dir/summaries.txt" | sed 's/^/  /'

say "Its metrics: one CloudWatch Embedded Metric Format record per invocation (the last one)"
grep '"_aws"' "$run_dir/lambda.log" >"$run_dir/metrics.jsonl" || true
python3 scripts/demo_helpers.py metrics "$run_dir/metrics.jsonl"

say "Done. Everything above ran locally; logs are in ${run_dir#$root/}/"

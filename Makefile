# The two commands users need: `make demo` and `make test` (see README.md).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
TOOLS_STAMP := $(VENV)/.installed
# cargo-deny, built from crates.io into the ignored venv folder (no prebuilt binaries offline).
CARGO_DENY_VERSION := 0.20.2
CARGO_DENY  := $(VENV)/cargo/bin/cargo-deny
BIN         := target/debug
CLI         := $(BIN)/iot-incidents
export SAM_CLI_TELEMETRY := 0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# Every event in events/ is built from events/lines/<name>.jsonl (or, for the
# control message, its decoded twin) by the query tool's `encode`.
EVENT_LINES := $(wildcard events/lines/*.jsonl)
EVENT_TIME  := 1763802000000

.PHONY: help
help:
	@echo "make demo    run the processor locally end to end (no AWS account needed)"
	@echo "make test    run every test, lint and check"
	@echo "make events  rebuild events/*.json from events/lines/ and the decoded twins"
	@echo "make bench   criterion benchmarks of each stage and the whole path"
	@echo "make compare the processor beside Python and Node.js handlers on the same batches"
	@echo "make sam-build  sam build (arm64 bootstrap via cargo-lambda and zig)"
	@echo "make fuzz    cargo fuzz (nightly) on each target for FUZZ_SECONDS"
	@echo "make audit   RustSec advisories (needs GitHub)"
	@echo "make mutants mutation testing (cargo-mutants) and the Guarantees table's breaks"

## Tools: a Python venv inside the repository with moto, cfn-lint, SAM CLI and cargo-lambda.
# cargo-deny is a lint tool: `lint` builds it, the demo does not need it.
.PHONY: tools
tools: $(TOOLS_STAMP)
$(CARGO_DENY):
	cargo install --quiet --locked cargo-deny@$(CARGO_DENY_VERSION) --root $(VENV)/cargo
$(TOOLS_STAMP): requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

.PHONY: build
build:
	cargo build --bins

## Tests: unit, integration (moto), end to end (cargo lambda), template checks.
# `build` first: the end-to-end test runs the demo, whose `cargo lambda watch`
# does `cargo run` of the function; dev-dependencies turn on extra features of
# a few shared crates, so the test build does not provide that binary's
# dependencies, and building them inside the test would hide minutes there.
.PHONY: test
test: tools lint build
	cargo test --all-targets --no-fail-fast

.PHONY: lint
lint: tools $(CARGO_DENY)
	cargo fmt --all -- --check
	cargo clippy --all-targets --quiet -- -D warnings
	# The function builds without the developer tooling (feature `tooling`).
	cargo check --quiet --no-default-features --lib --bin iot-log-processor
	cfn-lint template.yaml
	sam validate --lint --region us-east-1 --template template.yaml
	$(VENV)/bin/python scripts/lint_transformed.py template.yaml
	# cargo-deny reads `cargo metadata` for every platform, which needs crates a
	# Linux build never downloads (anstyle-wincon, windows-sys, ...): fetch them
	# all first, or a fresh CARGO_HOME fails here with "--offline was specified".
	cargo fetch --locked --quiet
	$(CARGO_DENY) --offline check licenses bans sources

## Security advisories (RustSec): needs GitHub, so not part of `make test` here.
.PHONY: audit
audit: tools $(CARGO_DENY)
	$(CARGO_DENY) check advisories

.PHONY: events
events: build
	for lines in $(EVENT_LINES); do \
	  name=$$(basename $$lines .jsonl); \
	  case $$name in cloudtrail-*) group=aws-cloudtrail-logs-123456789012;; *) group=AWSIotLogsV2;; esac; \
	  $(CLI) encode --log-group $$group --log-stream "$$name" --seed "$$(cksum <<< "$$name" | cut -d' ' -f1)" --time $(EVENT_TIME) \
	    --decoded events/$$name.decoded.json $$lines > events/$$name.json; \
	done
	$(CLI) encode --envelope events/control-message.decoded.json > events/control-message.json
	$(CLI) kinesis events/rule-not-found.json events/rule-throttled.json events/job-failure.json \
	  > events/kinesis/three-batches.json
	$(CLI) kinesis --corrupt-at 1 events/rule-not-found.json events/authorization-failures.json \
	  > events/kinesis/corrupt-record.json

.PHONY: demo
demo: tools build
	bash scripts/demo.sh </dev/null

.PHONY: bench
bench:
	cargo bench --bench pipeline

.PHONY: compare
compare:
	cargo build --release --bin iot-log-processor --bin iot-incidents
	python3 scripts/compare.py

## Fuzzing (nightly): each target for FUZZ_SECONDS, seeded with the events in events/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := event batch envelope message gunzip
CARGO_FUZZ   := $(VENV)/cargo/bin/cargo-fuzz
$(CARGO_FUZZ):
	cargo install --quiet --locked cargo-fuzz --root $(VENV)/cargo
.PHONY: fuzz
fuzz: $(CARGO_FUZZ)
	rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	mkdir -p $(addprefix fuzz/corpus/,$(FUZZ_TARGETS))
	cp events/*.json events/kinesis/*.json fuzz/corpus/event/
	cp events/*.decoded.json fuzz/corpus/batch/
	cp events/*.decoded.json fuzz/corpus/envelope/
	cat events/lines/*.jsonl | split -l 1 - fuzz/corpus/message/line-
	for target in $(FUZZ_TARGETS); do \
	  PATH=$(CURDIR)/$(VENV)/cargo/bin:$$PATH cargo +nightly fuzz run $$target fuzz/corpus/$$target -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 -max_len=1048576 || exit 1; \
	done

## Mutation testing (cargo-mutants; not part of `make test`). Each group of
## modules is built and run with only the tests that cover it (`-C` reaches
## the build too: without it every mutant rebuilds all 24 test targets): the
## pure core with the library's unit tests, each adapter with the moto
## integration tests that drive it. Results: mutants.out/<group>/mutants.out/
## and docs/mutants.md; then the curated breaks of the Guarantees table
## (scripts/break_guarantees.py). In place (--in-place): the tests need
## ./.venv and the warm target/; do not edit the tree while it runs (each
## mutation is undone after its test). cargo-mutants exits 2 for missed
## mutants and 3 for timeouts: both are results, not failures of the run.
## `make mutants MUTANTS_ARGS=--iterate` tests again only what was missed
## or timed out last time (after new tests).
CARGO_MUTANTS_VERSION := 27.0.0
CARGO_MUTANTS := $(VENV)/cargo/bin/cargo-mutants
MUTANTS_CORE  := src/ingest/decode.rs src/incident/lifecycle.rs src/incident/silence.rs src/incident/delta.rs src/store/redact/*.rs
MUTANTS_ARGS ?=
MUTATE = code=0; $(CARGO_MUTANTS) mutants --in-place --no-shuffle $(MUTANTS_ARGS) --output mutants.out/$(1) \
	  $(addprefix --file ,$(2)) $(addprefix -C ,$(3)) || code=$$?; \
	  [ $$code -eq 0 ] || [ $$code -eq 2 ] || [ $$code -eq 3 ]
$(CARGO_MUTANTS):
	cargo install --quiet --locked cargo-mutants@$(CARGO_MUTANTS_VERSION) --root $(VENV)/cargo
.PHONY: mutants
mutants: tools build $(CARGO_MUTANTS) $(CARGO_DENY)
	mkdir -p mutants.out
	$(call MUTATE,core,$(MUTANTS_CORE),--lib)
	$(call MUTATE,entries,src/aws/entries.rs,--lib --test=store_and_notify)
	$(call MUTATE,sweep,src/pipeline/sweep.rs,--lib --test=incidents)
	$(call MUTATE,notify,src/pipeline/notify.rs,--lib --test=incidents --test=store_and_notify)
	python3 scripts/break_guarantees.py
	@echo "caught/missed per group: mutants.out/*/mutants.out/*.txt (summary in docs/mutants.md)"

.PHONY: sam-build
sam-build: tools
	time sam build --template template.yaml
	ls -l .aws-sam/build/ProcessorFunction/bootstrap

.PHONY: clean
clean:
	rm -rf .aws-sam .demo
	cargo clean

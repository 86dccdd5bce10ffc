# callrouter: `make run` starts the service, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test bench check system-deps venv prompts clean observe fuzz-sip soak schemathesis fuzz

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

system-deps:
	@scripts/ensure-system-deps

prompts: venv system-deps
	$(BIN)/callrouter prompts build

# The console's phone: JsSIP from package-lock.json, bundled by esbuild into a static asset. npm ci
# runs only when the lock file changed (npm's cache first), so a built checkout needs no network.
PHONE := callrouter/web/phone
PHONE_JS := callrouter/web/static/jssip.js
.PHONY: phone
$(PHONE)/node_modules/.installed: $(PHONE)/package-lock.json
	cd $(PHONE) && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	@touch $@
$(PHONE_JS): $(PHONE)/node_modules/.installed $(PHONE)/entry.js
	$(PHONE)/node_modules/.bin/esbuild $(PHONE)/entry.js --bundle --format=esm --minify \
		--target=es2020 --legal-comments=eof --log-level=warning --outfile=$@
phone: system-deps $(PHONE_JS)

check: venv
	$(BIN)/callrouter check --config deploy/dev/callrouter.yaml dialplans

# The modules run in TEST_JOBS processes (each its own PostgreSQL schemas, ports and temporary
# directories); most whole-service tests wait on SIP timers, so two processes fit two cores.
test: TEST_JOBS ?= 2
test: system-deps venv prompts phone
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile

# The benchmarks (not in `make test`; every run bounded): results, with their targets, in
# bench/results/. BENCH=bench_calls runs one of them; SCALE=short runs each phase small.
bench: BENCH ?=
bench: SCALE ?= full
bench: system-deps venv prompts
	BENCH_SCALE=$(SCALE) $(BIN)/python -m bench $(BENCH)

run: system-deps venv prompts phone
	$(BIN)/callrouter check --config deploy/dev/callrouter.yaml dialplans
	@scripts/dev-users
	@scripts/run-banner
	exec $(BIN)/callrouter serve --config deploy/dev/callrouter.yaml

demo: system-deps venv prompts
	$(BIN)/python -m callrouter.devtools.demo

# A local Prometheus with callrouter's rules scraping `make run`'s metrics port; data in var/prometheus.
OBSERVE_LISTEN ?= 127.0.0.1:9090
observe: system-deps venv
	exec $(BIN)/python -m callrouter.observe prometheus --target 127.0.0.1:9108 --listen $(OBSERVE_LISTEN) --var var

# The long SIP fuzz campaign (callrouter/devtools/sipfuzz.py) against a service of its own on
# loopback: COUNT mutated messages shared by the edge and the workers, reproducible from SEED;
# results in bench/results/sip_fuzz.json (messages per target, crashes, slots leaked, seed).
fuzz-sip: COUNT ?= 20000
fuzz-sip: SEED ?= 4475
fuzz-sip: system-deps venv prompts
	$(BIN)/python -m callrouter.devtools.sipfuzz --count $(COUNT) --seed $(SEED) --out bench/results/sip_fuzz.json

# schemathesis against docs/openapi.yaml and a real `callrouter serve`, signed in: EXAMPLES generated
# cases per operation (random; `make test` runs 3, derandomized); figures (cases, failures, server
# errors, per operation) in bench/results/schemathesis.json.
schemathesis: EXAMPLES ?= 25
schemathesis: system-deps venv prompts
	SCHEMATHESIS_EXAMPLES=$(EXAMPLES) SCHEMATHESIS_RESULTS=bench/results/schemathesis.json \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/web/test_schemathesis.py

# Coverage-guided fuzzing (atheris) of the dialplan loader, the iCalendar reader and the SIP
# message parser (fuzz/targets.py), FUZZ_SECONDS each from the seeds in fuzz/corpus/<target>/;
# executions, coverage and crashes in bench/results/fuzz.json (crashing inputs in var/fuzz/crashes/).
fuzz: FUZZ_SECONDS ?= 60
fuzz: venv
	$(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS) --out bench/results/fuzz.json

# Long runs that do not fit in `make test`; each adds itself as a prerequisite. Then a real
# `callrouter serve` taking steady calls into the menu and bridged to SIPp secretaries for DURATION
# seconds, the RSS, open files and threads of its processes sampled and required flat within 5%
# after the warm-up (bench/soak.py); results in bench/results/soak.json.
soak: DURATION ?= 1800
soak: fuzz-sip
	$(BIN)/python -m bench.soak --duration $(DURATION) --out bench/results/soak.json

clean:
	rm -rf $(VENV) var prompts/build .pytest_cache .hypothesis

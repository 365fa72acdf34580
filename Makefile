# VantageEdge — every developer and CI entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# kafkajs schedules timers with negative delays, which Node 23+ warns about (it runs them after 1 ms, as
# older Node did). The services' kafkajs no longer does (shared/src/snapshot-bus/kafkajs-idle-checks.ts);
# the tests' own Kafka clients (topics, admin) are plain kafkajs, so the warning stays off here.
export NODE_OPTIONS ?= --enable-source-maps --disable-warning=TimeoutNegativeWarning
# Node 24 (the active LTS) for every target: when the system's Node is older, scripts/provision-node.sh
# unpacks the official binary from the npm registry into .tools/node24/ (once) and it goes first on PATH,
# so npm ci, tsx, vitest and the services all run on it.
NODE_BIN := $(shell bash scripts/provision-node.sh)
ifneq ($(.SHELLSTATUS),0)
$(error could not provision Node 24 (see the message above))
endif
ifneq ($(NODE_BIN),)
export PATH := $(NODE_BIN):$(PATH)
endif
TSX := node_modules/.bin/tsx
VITEST := node_modules/.bin/vitest
TEST_RESULTS := .data/test-results.json
TEST_RESULTS_CLUSTER := .data/test-results-cluster.json

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

# Re-installs when the lock file or the Node binary changes (native add-ons are built for one Node).
node_modules/.install-stamp: package.json package-lock.json $(if $(NODE_BIN),$(NODE_BIN)/node)
	npm ci --no-audit --no-fund
	@node -p '`installed with Node $${process.version}`' > $@

.PHONY: install node-version
install: node_modules/.install-stamp ## Install npm dependencies (npm ci when package-lock.json changed)
node-version: ## Print the Node.js every target runs on (24; provisioned into .tools/node24 when the system's is older)
	@node --version

## ---- compiled build (what the container image and the run-* targets run) ----
.PHONY: build
build: install ## Bundle every service and CLI into dist/ (esbuild, source maps; npm packages stay in node_modules) and the web console into dist/console (Vite)
	@$(TSX) scripts/build.ts

## ---- web console (services/console, served by the control plane at /console) ----
.PHONY: console-build console-browser
console-build: install ## Build the web console alone into dist/console (Vite), what the control plane serves at /console (CONSOLE_DIR)
	@$(TSX) scripts/console-build.ts
console-browser: ## Install Debian's chromium when missing (the console's browser tests drive it with playwright-core)
	@bash infra/ops-tools.sh chromium
.PHONY: tenant-config-schema
tenant-config-schema: install ## Regenerate examples/gitops/tenant-config.schema.json from the tenant document's zod schema
	@$(TSX) scripts/tenant-config-schema.ts && node_modules/.bin/biome format --write examples/gitops/tenant-config.schema.json >/dev/null

## ---- local infrastructure (PostgreSQL, Redis, Kafka on 127.0.0.1) ----
# REDIS_MODE=cluster / KAFKA_MODE=cluster: a Redis Cluster (3 masters + 3 replicas) and/or a three-broker
# Kafka instead of the single servers (infra/README.md).
export REDIS_MODE ?= single
export KAFKA_MODE ?= single
.PHONY: infra-up infra-down infra-status infra-reset infra-cluster-up infra-cluster-down infra-cluster-status
infra-up: install ## Install (if missing) and start PostgreSQL, Redis and Kafka; idempotent [REDIS_MODE=cluster KAFKA_MODE=cluster]
	@bash infra/infra.sh up
infra-down: ## Stop the servers infra-up started (and nothing else)
	@bash infra/infra.sh down
infra-status: ## Show which local servers are up
	@bash infra/infra.sh status
infra-reset: ## Stop the servers and wipe their data
	@bash infra/infra.sh reset
infra-cluster-up: install ## Start the Redis Cluster (16100-16105) and the three-broker Kafka (16200-16202) beside the single servers; idempotent
	@bash infra/infra.sh up redis-cluster kafka-cluster
infra-cluster-down: ## Stop the Redis Cluster and the three-broker Kafka
	@bash infra/infra.sh down redis-cluster kafka-cluster
infra-cluster-status: ## Show whether the Redis Cluster and the three-broker Kafka are up
	@bash infra/infra.sh status redis-cluster kafka-cluster

## ---- database ----
.PHONY: migrate-up migrate-down
migrate-up: install ## Apply pending SQL migrations (DATABASE_URL)
	@$(TSX) migrations/src/cli.ts up
migrate-down: install ## Roll back the newest migration (STEPS=n for more)
	@$(TSX) migrations/src/cli.ts down $(or $(STEPS),1)

## ---- quality ----
.PHONY: typecheck lint format
typecheck: install ## Type-check every package (tsc --noEmit, strict; the browser console with its own DOM/JSX settings)
	@node_modules/.bin/tsc --noEmit -p tsconfig.json
	@node_modules/.bin/tsc --noEmit -p services/console/tsconfig.json
lint: install ## Lint and check formatting (biome)
	@node_modules/.bin/biome check .
format: install ## Format the code (biome)
	@node_modules/.bin/biome check --write .

## ---- control plane ----
.PHONY: run-control-plane
run-control-plane: build migrate-up ## Run the admin API on CONTROL_PLANE_PORT (8080): commands, queries, /openapi.json, /docs; needs API_KEY_PEPPER and CLERK_JWT_KEY
	@node dist/services/control-plane/main.js

## ---- read models (control-plane queries, audit log) ----
.PHONY: run-projector replay
run-projector: build ## Follow the event log into the read models (tenants, users, origins, routes, api_keys, audit_log) from their checkpoint (DATABASE_URL)
	@node dist/projections/read-models/main.js
replay: install ## Rebuild every read model from position 0 into a fresh schema and swap it in (progress bar, events/s); safe while the projector runs
	@$(TSX) projections/src/read-models/replay-cli.ts

## ---- gateway snapshots ----
.PHONY: run-snapshot-projector republish-snapshots refold-snapshots
run-snapshot-projector: build ## Fold events into per-tenant gateway snapshots and publish them to Kafka (DATABASE_URL, KAFKA_BROKERS)
	@node dist/projections/snapshots/main.js
republish-snapshots: install ## Rebuild a lost snapshot topic: queue every tenant's snapshot for the running snapshot projector and wait until published
	@$(TSX) projections/src/snapshots/republish-cli.ts
refold-snapshots: install ## Rebuild every gateway snapshot from the event log, then republish; refuses (exit 1, nothing changed) to drop a served tenant unless DROP_UNFOLDABLE_TENANTS=1
	@$(TSX) projections/src/snapshots/republish-cli.ts --refold $(if $(filter 1,$(DROP_UNFOLDABLE_TENANTS)),--drop-unfoldable-tenants)

.PHONY: run-gateway
run-gateway: build ## Run one gateway replica: traffic on GATEWAY_PORT (8000), admin on GATEWAY_ADMIN_PORT (8001); needs API_KEY_PEPPER
	@node dist/services/gateway/main.js

## ---- dev mode: the whole product in one process (services/dev, docs/dev-mode.md) ----
DEV_DATA := $(or $(VANTAGEEDGE_DATA_DIR),$(CURDIR)/.data)
.PHONY: dev dev-reset dev-token seed load-test compose-env
dev: install console-build ## Run everything in one process on embedded defaults (PostgreSQL, in-memory bus/limits/cache), seed the demo, print URLs, token and demo requests; Ctrl-C stops it
	@node --import tsx services/dev/src/main.ts
dev-reset: ## Wipe make dev's data (embedded PostgreSQL, dev key pair); stop make dev first
	@if pgrep -f "[p]ostgres -D ($(DEV_DATA)/dev|/var/tmp/vantageedge-dev-)" >/dev/null; then echo "make dev is still running: stop it first (Ctrl-C)"; exit 1; fi
	@rm -rf "$(DEV_DATA)/dev" "/var/tmp/vantageedge-dev-$$(printf %s "$(DEV_DATA)" | md5sum | cut -c1-12)"
	@echo "dev data wiped ($(DEV_DATA)/dev)"
dev-token: install ## Print a DEVELOPMENT-ONLY Clerk-shaped token for make dev [USER=user_id ORG=org_id ROLE=admin|member]
	@$(TSX) services/dev/src/dev-token.ts $(if $(filter command line,$(origin USER)),--user '$(USER)') $(if $(ORG),--org '$(ORG)') $(if $(ROLE),--role '$(ROLE)')
compose-env: install ## Write .env.compose: DEVELOPMENT sign-in for docker-compose.yml (dev key pair, dev mode on); docker compose --env-file .env.compose up
	@$(TSX) services/dev/src/compose-env.ts
seed: install ## Create the demo data (tenant demo, routes, key demo_key_abc123) in DATABASE_URL or make dev's database; idempotent
	@$(TSX) services/dev/src/seed-cli.ts
load-test: install ## Load test the running make dev through the demo routes (autocannon): rps, p50/p95/p99, status mix, 429s, cache hits [DURATION=s CONNECTIONS=n]
	@$(TSX) services/dev/src/load-test.ts $(if $(DURATION),--duration $(DURATION)) $(if $(CONNECTIONS),--connections $(CONNECTIONS))

## ---- tests ----
.PHONY: test test-unit test-integration test-coverage test-ops test-faults test-fuzz test-cluster
test: install infra-up migrate-up lint console-build console-browser test-ops ## Everything CI runs: install, infra, migrations, lint, deployment checks, the console build and chromium, the type-check beside the API fuzzer, all tests, the cluster tests, then the fault suite
	@$(MAKE) --no-print-directory -j2 --output-sync=target typecheck test-fuzz
	@mkdir -p .data
	$(VITEST) run --project unit --project unit-isolated --project integration --project integration-isolated --reporter=default --reporter=json --outputFile=$(TEST_RESULTS)
	@$(MAKE) --no-print-directory test-cluster; status=$$?; bash infra/infra.sh down redis-cluster kafka-cluster; exit $$status
	@$(MAKE) --no-print-directory test-faults
test-unit: install ## Unit tests only (no servers)
	$(VITEST) run --project unit --project unit-isolated
test-integration: install infra-up migrate-up console-build console-browser ## Integration and end-to-end tests against the local servers (the console's in chromium)
	$(VITEST) run --project integration --project integration-isolated
test-fuzz: install console-build ## The admin API against /openapi.json: Schemathesis --checks all, fixed seed, on a control plane of its own (installs Schemathesis into .data/venv; ~2 min)
	@bash infra/infra.sh up postgres redis
	@$(TSX) scripts/fuzz/control-plane-fuzz.ts
test-faults: install ## Fault suite: private PostgreSQL/Redis/Kafka and an origin target killed and restarted under load across two gateways; table in .data/fault-suite.json (~3 min)
	@mkdir -p .data
	$(VITEST) run --project faults
test-cluster: install infra-up migrate-up ## Redis Cluster and three-broker Kafka (started here): store contract suites, failovers, 8 gateway replicas (~4 min)
	@mkdir -p .data
	@bash infra/infra.sh up redis-cluster kafka-cluster
	$(VITEST) run --project cluster --reporter=default --reporter=json --outputFile=$(TEST_RESULTS_CLUSTER)
test-ops: ## Validate the deployment files: docker-compose config, promtool check/test of the alerting and recording rules (installs docker-compose and promtool when missing)
	@bash infra/check-ops.sh
test-coverage: install infra-up migrate-up console-build console-browser ## All tests with a coverage report (coverage/)
	$(VITEST) run --project unit --project unit-isolated --project integration --project integration-isolated --coverage.enabled --coverage.provider=v8 --coverage.reporter=text-summary --coverage.reporter=html

## ---- benchmarks (JSON results in bench-results/, git-ignored) ----
.PHONY: bench-eventstore
bench-eventstore: install ## Event store on local PostgreSQL: appends/s (1, 16 writers) and readAll events/s (~1 min)
	@bash infra/infra.sh up postgres
	@$(TSX) shared/src/event-store/bench/eventstore-bench.ts
.PHONY: bench-replay
bench-replay: install ## Read-model replay on local PostgreSQL: events/s over 100,000 events, 2 runs (~4 min)
	@bash infra/infra.sh up postgres
	@$(TSX) projections/src/read-models/bench/replay-bench.ts
.PHONY: bench-propagation
bench-propagation: install ## Snapshot propagation on local PostgreSQL+Kafka: 3 replicas, 1,000 tenants, p50/p99 of 200 updates; cold start 1,000x20 routes (~3 min)
	@bash infra/infra.sh up postgres kafka
	@node --expose-gc --import tsx services/gateway/src/config-plane/bench/propagation-bench.ts
.PHONY: bench-churn-propagation
bench-churn-propagation: install ## Another tenant's change -> 2 replicas while a 3.3 MB tenant changes 10 times a second, on local PostgreSQL+Kafka (~30 s)
	@bash infra/infra.sh up postgres kafka
	@node --import tsx services/gateway/src/config-plane/bench/churn-propagation-bench.ts
.PHONY: bench-capacity
bench-capacity: install ## One replica's cold start, CPU and memory at 1k/10k/50k tenants; snapshot size vs the topic limit (~5 min)
	@bash infra/infra.sh up kafka
	@node --expose-gc --max-old-space-size=4096 --import tsx services/gateway/src/config-plane/bench/capacity-bench.ts
.PHONY: bench-warm-start
bench-warm-start: install ## A replica's warm start from the snapshot store at 1k/10k tenants' files (BENCH_WARM_START_TENANTS): time, CPU, peak RSS, one file at a time vs 16 at once (no servers; ~1 min)
	@node --import tsx services/gateway/src/config-plane/bench/warm-start-bench.ts
.PHONY: bench-tenant-limits
bench-tenant-limits: install ## One tenant at the default limits on a replica: first apply and later versions, CPU, heap and RSS; two at the 2 MiB snapshot bound (header-heavy, IP-rule-heavy) (no servers; ~1 min)
	@node --expose-gc --import tsx services/gateway/src/config-plane/bench/tenant-at-limits-bench.ts
.PHONY: bench-upstream
bench-upstream: install ## Gateway upstream hot path: acquire+release ns/op per LB algorithm and target count (~30 s)
	@$(TSX) services/gateway/src/upstream/bench/upstream-bench.ts
.PHONY: bench-gateway
bench-gateway: install ## Gateway vs direct origin vs nginx (if installed), autocannon, proxy pinned to one core (~1 min)
	@$(TSX) services/gateway/src/bench/quick-compare.ts
.PHONY: bench-gateway-auth
bench-gateway-auth: install ## Gateway token auth: Clerk RS256 verification per request vs the verified-token cache, then CPU per verification of Clerk, OIDC and service tokens, usual and 10 KB (~40 s)
	@$(TSX) services/gateway/src/bench/token-cache-bench.ts
	@$(TSX) services/gateway/src/bench/token-verification-bench.ts
.PHONY: bench-websocket-frames
bench-websocket-frames: install ## WebSocket frames of 2 B to 64 KiB: CPU µs per MB in the frame tracker alone and in a gateway process's event loop (ws client, no servers); BENCH_BASELINE_REV= a revision to compare (~1 min)
	@node --import tsx services/gateway/src/websocket/bench/frame-tracking-bench.ts
.PHONY: bench-redis-pipelining
bench-redis-pipelining: install ## Rate-limit checks against the local Redis with and without ioredis auto-pipelining: checks/s and client CPU µs per check (~30 s)
	@bash infra/infra.sh up redis
	@$(TSX) services/gateway/src/ratelimit/bench/auto-pipelining-bench.ts
.PHONY: bench-startup
bench-startup: build ## Gateway cold start (to /healthz, /readyz) and RSS: tsx vs the compiled dist/ build, median of 5 runs each (~1 min)
	@bash infra/infra.sh up redis kafka
	@$(TSX) bench/startup.ts
.PHONY: bench bench-quick bench-policy-parts bench-micro bench-policies-micro bench-config-cpu bench-profile
bench: install ## Gateway vs nginx vs direct, 9 scenarios and a paired comparison, wrk, proxy pinned to one core; installs nginx/wrk if missing (9-10 min)
	@bash infra/infra.sh up redis
	@node --import tsx bench/run.ts
bench-quick: install ## Short make bench: 2 s x 1 run per side (~2 min)
	@bash infra/infra.sh up redis
	@BENCH_QUICK=1 node --import tsx bench/run.ts
bench-policy-parts: install ## The route policies' cost, each policy alone and all together, against API-key auth (paired comparison only, ~12 min)
	@bash infra/infra.sh up redis
	@BENCH_SCENARIOS=apikey,policies BENCH_RUNS=1 BENCH_SECONDS=2 BENCH_POLICY_PARTS=1 node --import tsx bench/run.ts
bench-micro: install ## Hot functions alone (route match, API-key lookup, JWT with/without token cache, cache key), ns/op; CPU per cache HIT from L1 and Redis; JSON
	@$(TSX) bench/micro.ts
bench-policies-micro: install ## The route policies' per-request CPU in one process (scenario 9 less scenario 2, no sockets), ns; BENCH_GATEWAY_SRC= a copy of services/gateway/src to compare (~20 s)
	@$(TSX) bench/route-policies-micro.ts
bench-config-cpu: install ## CPU µs per request of each route policy at the largest and smallest config the control plane accepts, against the costliest request (no sockets, ~1 min)
	@$(TSX) bench/config-cpu-probe.ts
bench-profile: install ## The full-pipeline scenario with a V8 CPU profile of the gateway (serving only), then the top self-time functions
	@bash infra/infra.sh up redis
	@BENCH_QUICK=1 BENCH_SECONDS=$(or $(SECONDS_PER_RUN),5) BENCH_SCENARIOS=full BENCH_CPU_PROF=full node --import tsx bench/run.ts
	@$(TSX) bench/profile-summary.ts

# Every entry point of the project. `make run` and `make test` set up what
# they need on a fresh machine.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

BIN := $(CURDIR)/.bin
GO_TEST_FLAGS ?= -race -count=1 -timeout 20m

KAFKA_PORT ?= 19092
REDIS_PORT ?= 16379
POSTGRES_PORT ?= 15432
export KAFKA_PORT REDIS_PORT POSTGRES_PORT

REAL_ENV := SIDECAR_TEST_KAFKA_BROKERS=127.0.0.1:$(KAFKA_PORT) \
	SIDECAR_TEST_REDIS_URL=redis://127.0.0.1:$(REDIS_PORT)/0 \
	SIDECAR_TEST_REDIS_CLUSTER_URL=redis+cluster://127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003 \
	PROJECTOR_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$(POSTGRES_PORT)/postgres?sslmode=disable \
	SIDECAR_TEST_REQUIRE_REAL=1

PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
BUF := github.com/bufbuild/buf/cmd/buf@v1.75.0

# The Go release every target builds and tests with: go1.26.8's standard
# library has vulnerabilities that are fixed in later patch releases. The
# go command fetches it through the module proxy once (GOTOOLCHAIN).
GO_TOOLCHAIN ?= go1.26.11
export GOTOOLCHAIN := $(GO_TOOLCHAIN)

# govulncheck reads the Go vulnerability database from the golang.org/x/vulndb
# module (its data/osv), indexed into .bin once per version: these machines
# reach the module proxy, not the database's own host. A newer VULNDB_VERSION
# brings newer reports.
GOVULNCHECK := golang.org/x/vuln/cmd/govulncheck@v1.9.0
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB_DIR := $(BIN)/vulndb-$(VULNDB_VERSION)

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: run
run: ## run the sidecar; embedded Kafka and Redis unless SIDECAR_KAFKA_BROKERS and SIDECAR_REDIS_URL are set
	go run ./cmd/sidecar

.PHONY: build
build: ## build the sidecar into .bin/sidecar
	go build -o $(BIN)/sidecar ./cmd/sidecar

.PHONY: test
test: services-up build proto-check test-go test-python test-php bench-smoke test-faults vulncheck test-deploy test-readmodel ## every test, on real Kafka and Redis

.PHONY: test-go
test-go: ## Go tests on the embedded and the real backends (needs services-up)
	$(REAL_ENV) go test $(GO_TEST_FLAGS) ./...

.PHONY: test-unit
test-unit: ## Go tests on the embedded backend only, no services needed
	go test $(GO_TEST_FLAGS) ./...

.PHONY: test-python
test-python: build ## Python client tests against the sidecar on real Kafka and Redis
	scripts/python.sh venv
	SIDECAR_BIN=$(BIN)/sidecar SIDECAR_KAFKA_BROKERS=127.0.0.1:$(KAFKA_PORT) \
		SIDECAR_REDIS_URL=redis://127.0.0.1:$(REDIS_PORT)/0 scripts/python.sh test

.PHONY: php-deps
php-deps: ## install Debian's PHP, phpunit and Laravel packages (a no-op when installed)
	scripts/php.sh deps

.PHONY: test-php
test-php: build php-deps ## PHP client and Laravel example tests against the sidecar on real Kafka and Redis
	SIDECAR_BIN=$(BIN)/sidecar SIDECAR_KAFKA_BROKERS=127.0.0.1:$(KAFKA_PORT) \
		SIDECAR_REDIS_URL=redis://127.0.0.1:$(REDIS_PORT)/0 scripts/php.sh test

BENCH_DIR := $(CURDIR)/.bench
BENCH_FLAGS ?=
BENCH_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')
BENCH := $(BIN)/bench --sidecar $(BIN)/sidecar --brokers 127.0.0.1:$(KAFKA_PORT) \
	--redis redis://127.0.0.1:$(REDIS_PORT)/0 --work-dir $(BENCH_DIR) --commit "$(BENCH_COMMIT)"

.PHONY: bench-build
bench-build: build
	go build -o $(BIN)/bench ./cmd/bench

.PHONY: bench
bench: services-up bench-build ## benchmark the sidecar against raw franz-go and go-redis (about 5 minutes); see BENCHMARKS.md
	$(BENCH) --out $(BENCH_DIR)/bench.md $(BENCH_FLAGS)

.PHONY: bench-smoke
bench-smoke: services-up bench-build ## the whole benchmark at tiny sizes; fails when a row is missing
	$(BENCH) --smoke --out $(BENCH_DIR)/smoke.md

.PHONY: bench-profile
bench-profile: services-up bench-build ## CPU profiles of an in-process sidecar under append and catch-up load, in .bench/profile
	$(BENCH) --profile $(BENCH_DIR)/profile $(BENCH_FLAGS)
	for f in $(BENCH_DIR)/profile/*.pprof; do \
		go tool pprof -top -nodecount=60 -tagignore=side=client $$f > $${f%.pprof}.top.txt; \
		go tool pprof -top -cum -nodecount=80 -tagignore=side=client $$f > $${f%.pprof}.cum.txt; \
	done
	for f in $(BENCH_DIR)/profile/*.trace; do \
		for kind in sync sched net; do \
			go tool trace -pprof=$$kind $$f > $${f%.trace}.$$kind.pb; \
		done; \
		for kind in sync sched; do \
			go tool pprof -top -cum -nodecount=60 -focus=AppendToStream_Handler $${f%.trace}.$$kind.pb \
				> $${f%.trace}.$$kind.txt 2>/dev/null; \
		done; \
		go tool pprof -top -cum -nodecount=60 $${f%.trace}.net.pb > $${f%.trace}.net.txt 2>/dev/null; \
	done
	@echo "profiles and their summaries are in $(BENCH_DIR)/profile"

# The fault suite kills, flushes and restarts its Kafka and Redis: they are
# its own, on other ports and with their own state directory.
FAULTS_DIR := $(CURDIR)/.services/faults
FAULTS_ENV := SERVICES_DIR=$(FAULTS_DIR) KAFKA_PORT=29092 KAFKA_CONTROLLER_PORT=29093 REDIS_PORT=26379

.PHONY: test-faults
test-faults: build ## the fault suite on a Kafka and a Redis of its own: kill -9, Redis flushes and restarts, broker restarts
	$(FAULTS_ENV) scripts/redis.sh start
	$(FAULTS_ENV) scripts/kafka.sh start
	rc=0; $(FAULTS_ENV) SIDECAR_BIN=$(BIN)/sidecar go test -tags faults -count=1 -timeout 15m -v \
		./internal/faults/ || rc=$$?; \
	$(FAULTS_ENV) scripts/kafka.sh stop || true; $(FAULTS_ENV) scripts/redis.sh stop || true; exit $$rc

# deploy/k8s is a module of its own over this one (replace ../..), so the
# Kubernetes libraries stay out of go.mod; -mod=mod lets it follow
# dependencies added here.
.PHONY: test-deploy
test-deploy: ## build every Kubernetes overlay in deploy/k8s and check it against the sidecar
	cd deploy/k8s && go test -mod=mod -count=1 ./...

.PHONY: vulncheck
vulncheck: ## fail on known vulnerabilities that the code can reach (govulncheck)
	@if [[ ! -s $(VULNDB_DIR)/index/db.json ]]; then \
		(cd "$$(mktemp -d)" && go mod download golang.org/x/vulndb@$(VULNDB_VERSION)); \
		src=$$(go env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION); \
		rm -rf $(VULNDB_DIR).tmp; \
		go run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) -vulns "$$src/data/osv" -out $(VULNDB_DIR).tmp; \
		mv $(VULNDB_DIR).tmp $(VULNDB_DIR); \
	fi
	go run $(GOVULNCHECK) -db file://$(VULNDB_DIR) ./...

# The read model: the projector and the push service. Their own tests run
# in test-go, on the PostgreSQL that services-up starts; test-readmodel
# runs the whole flow end to end in headless Chromium.
.PHONY: build-readmodel
build-readmodel: build
	go build -o $(BIN)/projector ./cmd/projector
	go build -o $(BIN)/push ./cmd/push

.PHONY: browser-deps
browser-deps:
	source scripts/lib.sh && need_cmd chromium chromium

.PHONY: test-readmodel
test-readmodel: services-up php-deps browser-deps ## the status page end to end in headless Chromium: Laravel, the sidecar, the analyzer, the projector and the push service
	scripts/python.sh venv
	$(REAL_ENV) E2E_ANALYZER=$${PY_VENV:-$(CURDIR)/.venv}/bin/content-analyzer \
		go test -tags e2e -count=1 -timeout 10m -v ./e2e/

.PHONY: demo
demo: build-readmodel php-deps ## the whole flow on the embedded sidecar: prints the status page's URL; Ctrl-C stops it
	scripts/python.sh venv
	BIN=$(BIN) scripts/demo.sh

.PHONY: services-up
services-up: ## start real Kafka, Redis, a Redis Cluster and PostgreSQL on loopback (idempotent)
	scripts/redis.sh start
	scripts/redis-cluster.sh start
	scripts/kafka.sh start
	scripts/postgres.sh start

.PHONY: services-down
services-down: ## stop the services that services-up started
	-scripts/kafka.sh stop
	-scripts/redis.sh stop
	-scripts/redis-cluster.sh stop
	-scripts/postgres.sh stop

.PHONY: tools
tools:
	GOBIN=$(BIN) go install $(PROTOC_GEN_GO)
	GOBIN=$(BIN) go install $(PROTOC_GEN_GO_GRPC)

.PHONY: proto
proto: tools ## regenerate the Go and Python code from proto/
	PATH=$(BIN):$$PATH go run $(BUF) generate
	scripts/python.sh venv
	scripts/python.sh proto

.PHONY: proto-check
proto-check: tools ## fail when the committed generated code is stale
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	PATH=$(BIN):$$PATH go run $(BUF) generate -o "$$tmp"; \
	diff -r "$$tmp/proto/eventstorepb" proto/eventstorepb || \
		{ echo "proto/eventstorepb is stale: run make proto" >&2; exit 1; }
	scripts/python.sh venv
	scripts/python.sh check-proto

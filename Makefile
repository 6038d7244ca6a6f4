# tickit: `make help` lists every target with its one-line description.
SHELL := bash
.DEFAULT_GOAL := help

# Every Go module of the workspace (go.work).
PACKAGES := ./events/... ./functions/... ./knative/delivery/... ./knative/local/...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: test
test: deps ui ui-test ## every test: the web UI (type-checked build, Vitest), then every Go module with the race detector
	go test -race -count=1 -timeout 20m $(PACKAGES)

.PHONY: deps
deps: ## install what the tests need beyond Go modules (redis-server, via apt; the FerretDB test server, built once)
	@command -v redis-server >/dev/null || { echo "installing redis-server"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null); }
	@command -v redis-server >/dev/null || echo "redis-server unavailable: tests use the embedded miniredis"
	@bash knative/local/tools/ferretdb/build.sh >/dev/null

.PHONY: bench
bench: deps ## run the benchmarks, then the system table through the local runtime (BENCH_SCALE; never fails on a timing)
	go test -run '^$$' -bench . -benchmem -count=1 $(PACKAGES)
	go run ./knative/local/cmd/tickit-proof bench

.PHONY: chaos
chaos: deps ## faults under 200 buyers racing for 50 tickets, then the invariants (CHAOS_BUDGET, default 3m)
	go run ./knative/local/cmd/tickit-proof chaos

# The production data path (README: The database): every function on the official driver, each
# with its own database on one Mongo-wire server: MONGO_URL's when set, else a FerretDB built
# from knative/local/tools/ferretdb into .tickit/tools (about 1 min the first time).
.PHONY: wire
wire: deps ## the system on a Mongo-wire server (MONGO_URL or FerretDB): story, cancel, expiry, replayed events, each function's data
	TICKIT_WIRE=1 go test -count=1 -timeout 15m -run '^TestTheSystemOnAMongoWireServer$$' -v ./knative/local/e2e

.PHONY: fmt
fmt: ## format every Go file
	gofmt -w events functions knative

.PHONY: lint
lint: ## go vet, gofmt and staticcheck over every module
	@test -z "$$(gofmt -l events functions knative)" || { gofmt -l events functions knative; exit 1; }
	go vet $(PACKAGES)
	go run $(STATICCHECK) $(PACKAGES)

# The whole system on this machine, from the manifests (knative/local; README: Run it locally).
# Settings from the environment: ADDR, DATA, IDLE, TICK, EXPIRATION_WINDOW, VERBOSE, and
# NATS_URL, MONGO_URL, REDIS_URL, STRIPE_KEY, JWT_KEY, SENDGRID_API_KEY for real services.
# TRACE=1 also starts Jaeger (UI on JAEGER_UI, default 127.0.0.1:16686; JAEGER_UI_ASSETS=<folder
# of jaeger-ui's build> gives it its web UI; README: Follow a purchase).
LOCAL := go run ./knative/local/cmd/tickit-local

.PHONY: run
run: ui ## run tickit locally (the web UI built first): every function, the Broker, NATS, Redis, stripe-mock (TICK=1s by default)
	TICK=$${TICK:-1s} $(LOCAL) run

# make send/events/dlq/replay find make run by themselves (it writes DATA/address); ADDR
# overrides. DATA is only ever the data folder: make send's event data is FILE.
.PHONY: send
send: ## post a CloudEvent to the Broker and show what it did: make send TYPE=<type> [FILE=data.json, default events/testdata/<type>.json] [TO=function]
	$(LOCAL) send -type '$(TYPE)'$(if $(FILE), -file '$(FILE)')$(if $(TO), -to '$(TO)')

.PHONY: events
events: ## follow events through the local Broker, the 1 s ping hidden: [TYPE=<type prefix>,...] [ID=<event id>] [PING=1] [SHOW=data]
	$(LOCAL) events$(if $(TYPE), -type '$(TYPE)')$(if $(ID), -id '$(ID)')$(if $(PING), -ping)$(if $(filter data,$(SHOW)), -data)

.PHONY: dlq
dlq: ## list the local Broker's dead letters
	$(LOCAL) dlq

.PHONY: replay
replay: ## deliver a dead letter again to its trigger: make replay ID=<event id>
	$(LOCAL) replay -id '$(ID)'

.PHONY: trace
trace: ## print one order's traces as trees of spans with durations, from Jaeger (TRACE=1 make run): make trace ORDER=<id>
	go run ./knative/local/cmd/tickit-trace -order '$(ORDER)'

.PHONY: trace-e2e
trace-e2e: ## one purchase through the system with Jaeger is one trace through every function and the Broker; Jaeger serves JAEGER_UI_ASSETS (builds Jaeger once, ~3 min)
	TICKIT_TRACE_E2E=1 go test -count=1 -timeout 15m -run 'TestOnePurchaseIsOneTrace|TestJaeger' -v ./knative/local/traces ./knative/local/backing

# The kind cluster path (README: Deploy to kind). Needs docker, kind v0.33.0+, kubectl, ko,
# Go and Node; every version is pinned at the top of hack/cluster.sh, which
# knative/local/kindpath tests with stand-ins for those tools.
.PHONY: cluster
cluster: ## create the kind cluster "tickit" with Knative, Kourier, Eventing, NATS JetStream and config/
	hack/cluster.sh create

.PHONY: deploy
deploy: ## build the web UI and every function (ko, node's arch) into kind, apply knative/ (keys optional: STRIPE_KEY, ...)
	hack/cluster.sh deploy

.PHONY: undeploy
undeploy: ## delete what make deploy applied, the Broker and its undelivered events too (config/ and its data stay)
	hack/cluster.sh undeploy

# Conformance (README: Conformance): config/ and knative/ on real Kubernetes and Knative
# (etcd, kube-apiserver, Eventing's and Serving's own binaries) run as local processes.
# The first run builds them into .tickit/conformance/bin (~12 min, 2.7 GiB); later ones reuse them.
.PHONY: conformance
conformance: deps ## the manifests on real Knative as processes: webhooks, all Ready, the story through Knative's Broker
	knative/conformance/build.sh
	cd knative/conformance && GOWORK=off go test -count=1 . && GOWORK=off go run .

# The web UI (functions/client/web, React + TypeScript): Vite builds it into
# functions/client/ui/dist, which the client function embeds; without it the function serves
# a page saying to run make ui. npm installs the packages of the lock file (again only when it
# changes), and Vite builds again only when a source, the config or the packages changed.
WEB := functions/client/web
UI_BUILD := functions/client/ui/dist/index.html

$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund

$(UI_BUILD): $(WEB)/node_modules/.package-lock.json $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) \
		$(WEB)/index.html $(WEB)/package.json $(WEB)/tsconfig.json $(WEB)/vite.config.ts
	cd $(WEB) && npm run build

.PHONY: ui
ui: $(UI_BUILD) ## build the web UI (npm ci, Vite) into functions/client/ui/dist for the client function

.PHONY: ui-test
ui-test: $(WEB)/node_modules/.package-lock.json ## the web UI's unit tests (Vitest)
	cd $(WEB) && npm test

.PHONY: e2e
e2e: ui ## the story in Debian's chromium against a make run of its own (or E2E_BASE_URL); screenshots in functions/client/web/e2e-output
	@command -v chromium >/dev/null || { echo "installing chromium"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); }
	cd $(WEB) && node --test e2e/story.test.mjs

# hitl-bridge build, test and run targets (GNU make).
#
#   make demo     scripted local handoff against the provider simulators
#   make test     cfn-lint + unit and integration tests (needs moto_server), the
#                 reliability suites in their short form, then make fuzz
#   make reliability  the reliability figures in their long form (~15 min)
#   make fuzz     every fuzz target for FUZZTIME each (default 10s; signed-input ones FUZZTIME_SLOW inputs)
#   make lint     gofmt, go vet, staticcheck (if installed), go mod tidy, cfn-lint
#   make bench    the performance table, with its targets (needs moto_server; ~10 min)
#   make build    Lambda binaries (linux/arm64) in bin/<function>/bootstrap
#   make dev      the bridge as one local process against real providers
#   make doctor   the self-check of the local configuration: each problem and its fix
#   make test-browser-deps  headless Chromium for the /admin browser test (apt)
#
# `sam build` calls the build-<LogicalId> targets (BuildMethod: makefile).

GO ?= go

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

BIN_DIR := bin

# function directory under functions/ = SAM logical id in template.yaml
FUNCTIONS := webhooks=WebhooksFunction actions=ActionsFunction admin=AdminFunction \
	tokenrefresh=TokenRefreshFunction redelivery=RedeliveryFunction

fn_dir = $(word 1,$(subst =, ,$(1)))
fn_id = $(word 2,$(subst =, ,$(1)))

LAMBDA_ENV := CGO_ENABLED=0 GOOS=linux GOARCH=arm64
LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags='-s -w'

# $(call lambda-build,<dir under functions/>,<output file>)
define lambda-build
$(LAMBDA_ENV) $(GO) build $(LAMBDA_FLAGS) -o $(2) ./functions/$(1)
endef

# build-<LogicalId>: what `sam build` runs, in a scratch copy of the repo,
# with ARTIFACTS_DIR set to where the function's bootstrap must go.
define sam-target
.PHONY: build-$(call fn_id,$(1))
build-$(call fn_id,$(1)):
	$$(if $$(ARTIFACTS_DIR),,$$(error ARTIFACTS_DIR is not set: build-$(call fn_id,$(1)) is run by `sam build`; use `make build`))
	$$(call lambda-build,$(call fn_dir,$(1)),$$(ARTIFACTS_DIR)/bootstrap)
endef
$(foreach f,$(FUNCTIONS),$(eval $(call sam-target,$(f))))

.PHONY: build
build: $(foreach f,$(FUNCTIONS),$(BIN_DIR)/$(call fn_dir,$(f))/bootstrap)

# Always handed to go build: its cache decides what is stale.
$(BIN_DIR)/%/bootstrap: FORCE
	$(call lambda-build,$*,$@)

.PHONY: FORCE
FORCE:

# -race needs cgo and a C compiler; without them the tests run without it.
RACE = $(shell [ "$$($(GO) env CGO_ENABLED 2>/dev/null)" = 1 ] && command -v "$$($(GO) env CC 2>/dev/null)" >/dev/null 2>&1 && echo -race)
TEST_FLAGS ?= $(RACE) -count=1

.PHONY: test-tools
test-tools:
	@missing=""; \
	for t in $(GO) moto_server cfn-lint; do \
		command -v "$$t" >/dev/null 2>&1 || missing="$$missing $$t"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "make test: missing on PATH:$$missing" >&2; \
		echo "  Go: https://go.dev/dl/ (go 1.26 or newer)" >&2; \
		echo "  moto_server and cfn-lint: pip install 'moto[server]' cfn-lint" >&2; \
		exit 1; \
	fi
	@$(if $(RACE),true,echo "note: cgo or a C compiler is unavailable; running tests without -race")

# The /admin page is tested in headless Chromium (pkg/admin); Debian's
# chromium (and chromium-driver) are installed when chromium is missing.
# In CI (CI=true) the test fails rather than skips without a browser.
.PHONY: test-browser-deps
test-browser-deps:
	@if command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium chromium-driver (apt-get)"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "chromium is missing and apt-get is not available: install Chromium to run the /admin browser test" >&2; \
	fi

.PHONY: test
test: test-tools test-browser-deps
	cfn-lint template.yaml
	@log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	pkgs=$$($(GO) list ./... | grep -v '/pkg/reliability$$'); \
	echo "$(GO) test $(TEST_FLAGS) ./... (pkg/reliability last, alone and without -race: its figures time"; \
	echo "webhook answers against the 3 s budget, which the race detector's slowdown would exceed on 2 cores)"; \
	status=0; { s=0; $(GO) test $(TEST_FLAGS) $$pkgs || s=$$?; \
		$(GO) test -count=1 ./pkg/reliability || s=$$?; exit $$s; } 2>&1 | tee "$$log" || status=$$?; \
	ok=$$(grep -c '^ok' "$$log" || true); \
	failed=$$(grep -c '^FAIL[[:space:]]' "$$log" || true); \
	notests=$$(grep -c '\[no test files\]' "$$log" || true); \
	echo "----"; \
	echo "go test: $$ok packages ok, $$failed failed, $$notests without tests"; \
	if [ "$$failed" -gt 0 ]; then grep '^FAIL[[:space:]]' "$$log"; fi; \
	exit $$status
	@$(MAKE) --no-print-directory fuzz

# Fuzz targets as <package>:<target>[:slow]. A crasher is kept in the
# package's testdata/fuzz/<target>/ and replayed by every later go test.
# Slow targets (each input is RSA-signed) run a count of inputs: a time
# budget that ends while a slow input runs is reported by go test as a
# failure ("context deadline exceeded").
FUZZ_TARGETS := ./pkg/livechat:FuzzParse ./pkg/zoho:FuzzParse:slow ./pkg/httpapi:FuzzNativeAPI \
	./pkg/botpress:FuzzBotpressAPI ./pkg/apigw:FuzzAdapter
FUZZTIME ?= 10s
FUZZTIME_SLOW ?= 10000x

.PHONY: fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; time=$(FUZZTIME); \
		case "$$rest" in *:slow) time=$(FUZZTIME_SLOW);; esac; \
		echo "$(GO) test -run '^$$' -fuzz '^$$name\$$' -fuzztime $$time $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$time "$$pkg"; \
	done

# The reliability figures of pkg/reliability (faults, load, forgery,
# malformed input, secrets in logs) in their long form: 10,000 webhook
# events over 200 sessions and the issue's other counts, on both stores;
# each test fails when its figure falls short, and the table is printed
# at the end. RELIABILITY=short runs the form make test runs. Without
# -race: its slowdown would put 64 webhooks queued on moto_server, which
# takes one request at a time, past the 3 s webhook budget.
RELIABILITY ?= long

.PHONY: reliability
reliability: test-tools
	HITL_RELIABILITY=$(RELIABILITY) $(GO) test -count=1 -timeout 90m -v ./pkg/reliability

GO_FILES = $(shell find . -path './.*' -prune -o -path './$(BIN_DIR)' -prune -o -name '*.go' -print)

.PHONY: lint
lint:
	@unformatted=$$(gofmt -l $(GO_FILES) </dev/null); \
	if [ -n "$$unformatted" ]; then echo "gofmt: needs formatting (run gofmt -w):"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then \
		echo "staticcheck ./..."; staticcheck ./...; \
	else \
		echo "staticcheck not installed, skipped (go install honnef.co/go/tools/cmd/staticcheck@latest)"; \
	fi
	$(GO) mod tidy -diff
	cfn-lint template.yaml

# The performance table of pkg/bench, measured in one run: printed, and
# written as JSON to .bench/ (git-ignored) to compare with the next run.
.PHONY: bench
bench:
	$(GO) test -tags bench -run '^TestBenchTable$$' -count=1 -timeout 30m -v ./pkg/bench

.PHONY: demo
demo:
	$(GO) run ./functions/demo

# Settings come from the environment; a .env file (KEY='value' lines, shell
# syntax, never committed) is loaded first if present, e.g.
#   LIVECHAT_ORGANIZATION_ID='...'
#   HITL_SECRET_JSON='{"botApiKeys":["..."],...}'
.PHONY: dev
dev:
	@if [ -f .env ]; then echo "loading .env"; set -a; . ./.env; set +a; fi; \
	$(GO) run ./functions/local

# The self-check of GET /v1/admin/status against the settings of make dev
# (environment, or .env): per provider a verdict and each problem's fix.
# Run it while make dev is stopped (it opens the same store).
.PHONY: doctor
doctor:
	@if [ -f .env ]; then set -a; . ./.env; set +a; fi; \
	$(GO) run ./functions/local -doctor

.PHONY: clean
clean:
	rm -rf $(BIN_DIR) .aws-sam .artifacts

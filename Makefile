# hitl-bridge build, test and run targets (GNU make).
#
#   make demo     scripted local handoff against the provider simulators
#   make test     cfn-lint + unit and integration tests (needs moto_server)
#   make lint     gofmt, go vet, staticcheck (if installed), go mod tidy, cfn-lint
#   make build    Lambda binaries (linux/arm64) in bin/<function>/bootstrap
#   make dev      the bridge as one local process against real providers
#
# `sam build` calls the build-<LogicalId> targets (BuildMethod: makefile).

GO ?= go

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

BIN_DIR := bin

# function directory under functions/ = SAM logical id in template.yaml
FUNCTIONS := webhooks=WebhooksFunction actions=ActionsFunction \
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

.PHONY: test
test: test-tools
	cfn-lint template.yaml
	@log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	echo "$(GO) test $(TEST_FLAGS) ./..."; \
	status=0; $(GO) test $(TEST_FLAGS) ./... 2>&1 | tee "$$log" || status=$$?; \
	ok=$$(grep -c '^ok' "$$log" || true); \
	failed=$$(grep -c '^FAIL[[:space:]]' "$$log" || true); \
	notests=$$(grep -c '\[no test files\]' "$$log" || true); \
	echo "----"; \
	echo "go test: $$ok packages ok, $$failed failed, $$notests without tests"; \
	if [ "$$failed" -gt 0 ]; then grep '^FAIL[[:space:]]' "$$log"; fi; \
	exit $$status

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

.PHONY: demo
demo:
	$(GO) run ./functions/local -demo

# Settings come from the environment; a .env file (KEY='value' lines, shell
# syntax, never committed) is loaded first if present, e.g.
#   LIVECHAT_ORGANIZATION_ID='...'
#   HITL_SECRET_JSON='{"botApiKeys":["..."],...}'
.PHONY: dev
dev:
	@if [ -f .env ]; then echo "loading .env"; set -a; . ./.env; set +a; fi; \
	$(GO) run ./functions/local

.PHONY: clean
clean:
	rm -rf $(BIN_DIR) .aws-sam

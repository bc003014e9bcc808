# tidegate — see README.md. `make demo` and `make test` are the two commands.
GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
# version, commit and build date also when GOFLAGS has -buildvcs=false
STAMP    := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE) -X tidegate/buffer.buildDate=$(DATE)
LDFLAGS  := -s -w $(STAMP)
# The control API and the uplink never speak HTTP/2: leaving it out of net/http
# saves about 0.5 MB, which keeps the mipsle binary under 10 MB.
RELEASE_TAGS := nethttpomithttp2
# No inlining in net/... and crypto/...: code the daemon runs per connection
# or per request, not per byte on the bus, and ~0.4 MB less on mipsle, which
# was 10.03 MB (over the 10 MB limit) with CJ/T 188 in.
RELEASE_GCFLAGS := -gcflags=net/...=-l -gcflags=crypto/...=-l
# mipsle only (it was 10.55 MB with this round's signed commands, watchdog,
# remote config and backfill): no inlining anywhere but the runtime and the
# packages a poll runs through byte by byte (drivers, protocol): 9.90 MB.
# Inlining buffer, filter and pipeline too measured 9.90-10.03 MB, over the
# limit in a clean clone. The other architectures keep the flags above.
MIPS_GCFLAGS := -gcflags=all=-l -gcflags=runtime= -gcflags=tidegate/drivers/...= -gcflags=tidegate/protocol/...=
# The packages' version: 0.x.y at a tag v0.x.y, else the commit (configs/packages/version).
PKG_VERSION ?= $(shell ./configs/packages/version)
# Build tools (nfpm, staticcheck, deadcode) are pinned in a module of their
# own, so the product's go.mod lists only what the binaries link.
TOOL     := $(GO) tool -modfile=tools/go.mod
# What `make release` builds; CI packs only tidegate (RELEASE_CMDS=tidegate).
RELEASE_CMDS ?= tidegate metersim
FUZZTIME ?= 3s
DEMO_SECONDS ?=

.PHONY: all build test vet unit fuzz bench demo release package staticcheck deadcode clean

all: build

build:
	$(GO) build -ldflags '$(STAMP)' -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet ./...

# Must print nothing (CI runs it); `//lint:ignore CHECK reason` where a
# finding is wrong.
staticcheck:
	$(TOOL) staticcheck ./...

# Functions no binary or test reaches; informative (simulator and broker
# helpers used only by tests are listed without -test).
deadcode:
	$(TOOL) deadcode -test ./...

# Two go test runs (CPU-heavy packages, then the timing-sensitive ones with
# -p 1); see .ci/unit. The events are kept in $(BIN)/unit for the skip list.
unit:
	GO=$(GO) ./.ci/unit $(BIN)/unit

fuzz:
	FUZZTIME=$(FUZZTIME) ./.ci/fuzz

# Ends with one line per skipped test and its reason (no mosquitto, no small
# filesystem, TIDEGATE_LONG runs), which go test shows only with -v; also
# when the unit pass failed.
test: vet
	@rc=0; $(MAKE) --no-print-directory unit || rc=1; \
	[ $$rc -ne 0 ] || $(MAKE) --no-print-directory fuzz || rc=1; \
	[ ! -x $(BIN)/unit/testsum ] || $(BIN)/unit/testsum -skips $(BIN)/unit/*.json; \
	exit $$rc

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

demo: build
	$(BIN)/demo --bin $(BIN) $(if $(DEMO_SECONDS),-seconds $(DEMO_SECONDS))

# Static binaries for the release architectures, each checked ≤ 10 MB, with
# its module list (go version -m) beside it and SHA256SUMS over all. mipsle is
# soft-float: OpenWrt's mipsel_24kc has no FPU (+65 KB).
release:
	@rm -rf $(BIN)/release; mkdir -p $(BIN)/release; \
	for t in linux/amd64 linux/arm/7 linux/arm64 linux/mipsle; do \
	  os=$${t%%/*}; rest=$${t#*/}; arch=$${rest%%/*}; arm=$${rest#*/}; [ "$$arm" = "$$rest" ] && arm=; \
	  out=$(BIN)/release/tidegate-$$os-$$arch$${arm:+v$$arm}; \
	  for cmd in $(RELEASE_CMDS); do \
	    o=$$out; [ $$cmd = tidegate ] || o=$$out-$$cmd; \
	    gf="$(RELEASE_GCFLAGS)"; [ $$arch = mipsle ] && gf="$(MIPS_GCFLAGS)"; \
	    CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=$$arm GOMIPS=softfloat $(GO) build -trimpath -tags $(RELEASE_TAGS) $$gf -ldflags '$(LDFLAGS)' -o $$o ./cmd/$$cmd || exit 1; \
	    $(GO) version -m $$o > $$o.modules.txt || exit 1; \
	  done; \
	done; \
	for f in $(BIN)/release/*; do \
	  case $$f in *.txt) continue;; esac; \
	  sz=$$(wc -c < $$f); awk -v f=$$f -v s=$$sz 'BEGIN { printf "%-48s %6.2f MB\n", f, s / 1e6 }'; \
	  [ $$sz -le 10000000 ] || { echo "$$f is over 10 MB" >&2; exit 1; }; \
	done; \
	cd $(BIN)/release && sha256sum * > SHA256SUMS

# .deb (amd64, arm64, armhf) and OpenWrt .ipk (mipsel_24kc,
# arm_cortex-a7_neon-vfpv4, aarch64_generic) of the release binaries, into
# $(BIN)/packages with their SHA256SUMS. See configs/packages/README.md.
package: release
	@rm -rf $(BIN)/packages; \
	fmt=$$($(BIN)/release/tidegate-linux-amd64 version --json 2>/dev/null | sed -n 's/.*"buffer_format":\([0-9]*\).*/\1/p'); \
	[ -n "$$fmt" ] || fmt=$$($(GO) run ./cmd/tidegate version --json | sed -n 's/.*"buffer_format":\([0-9]*\).*/\1/p'); \
	[ -n "$$fmt" ] || { echo "cannot tell the buffer format" >&2; exit 1; }; \
	GO=$(GO) ./configs/packages/make-packages $(BIN)/release $(BIN)/packages '$(PKG_VERSION)' $$fmt && \
	rm -rf $(BIN)/packages/work && cd $(BIN)/packages && sha256sum *.deb *.ipk > SHA256SUMS

clean:
	rm -rf $(BIN)

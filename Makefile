# ldx — build, test, and prove against real kernel memory.
#
#   make demo   extract the bundled sample device image and show the result
#   make test   unit tests, vet, gofmt, short fuzz runs (no network, no QEMU)
#   make e2e    real Debian kernels under QEMU → emulated livedump devices →
#               ldx extract → crash, makedumpfile and drgn read the result
#   make bench  throughput, output size and peak RSS against dd and makedumpfile

SHELL     := /bin/bash
.SHELLFLAGS := -o pipefail -c
GO        ?= go
BIN       := bin/ldx
export PATH := $(PATH):/usr/local/go/bin
# Downloads (kernels, debug vmlinux) and guest dumps are cached here.
LDX_CACHE ?= $(HOME)/.cache/ldx
export LDX_CACHE
FUZZTIME  ?= 10s
# Bounds each minimization of a new input, so one stays well inside FUZZTIME.
FUZZMINTIME ?= 2s
# Tests write and fsync many small dumps; on tmpfs fsync is free.
TEST_TMPDIR ?= $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo /tmp)

.PHONY: all build test vet fmt-check unit fuzz-short e2e e2e-deps bench bench-analysis bench-vmlinux bench-kcore verify-agreement demo clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/ldx

test: fmt-check vet unit fuzz-short

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	TMPDIR=$(TEST_TMPDIR) $(GO) test -count=1 ./...

# Each fuzz target runs briefly; `make fuzz FUZZTIME=10m` for a sustained run.
# Go 1.26's fuzz coordinator can end a run that found nothing with "context
# deadline exceeded" when -fuzztime runs out while a starved worker is mid-
# call (golang/go#75804, fixed in Go 1.27): such a run, with no failing
# input written, is run once more; a failing input always fails.
FUZZ_TARGETS := ./elfcore:FuzzNewFile ./elfcore/flattened:FuzzOpen ./elfcore/kdump:FuzzOpen ./elfcore/kdump:FuzzLZO1X ./extract/dump:FuzzAnalyseKdump ./elfcore:FuzzParseNotes ./vmcoreinfo:FuzzParse ./elfcore/kernel/printk:FuzzRead ./elfcore/kernel/kallsyms:FuzzRead ./elfcore/kernel/kmem:FuzzTranslate ./extract/verify:FuzzVerify ./elfcore/kernel/pageclass:FuzzClassify ./extract/dump:FuzzParseCaptureNote ./kmod/kcore:FuzzOpen
fuzz-short fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		for try in 1 2; do \
			log=$$(mktemp); rc=0; \
			$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) $$pkg 2>&1 | tee $$log || rc=$$?; \
			[ $$rc -eq 0 ] || rc=1; \
			if [ $$rc -ne 0 ] && [ $$try -eq 1 ] && grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
				rm -f $$log; echo "fuzz $$fn: Go's fuzztime deadline race, no failing input: once more"; continue; \
			fi; \
			rm -f $$log; [ $$rc -eq 0 ] || exit 1; break; \
		done; \
	done

e2e-deps:
	./.ci/deps-e2e

e2e: e2e-deps build
	@s=0; $(GO) test -count=1 -p 1 -tags e2e -timeout 80m -run '^Test(E2E|KdumpE2E|KdumpWriteE2E|FilterE2E|AnalysisE2E|PsE2E|SymsE2E|GenerateE2E|VmlinuxE2E|CaptureE2E|KcoreE2E)$$' -v ./extract/ ./cmd/ldx/ ./vmcoreinfo/generate/ 2>&1 | tee e2e.log | grep -E '^(\s*--- |PASS|FAIL|ok|guest: |\s+\w+_test.go:[0-9]+: (e2e_|capture_e2e|kcore_e2e|crash|drgn))' || s=$$?; \
	echo "e2e: full log in e2e.log"; [ $$s -eq 0 ] || { .ci/failures e2e.log; exit $$s; }

bench: e2e-deps build
	LDX_BENCH=1 $(GO) test -count=1 -tags e2e -timeout 60m -run 'TestBench(E2E|KdumpE2E)' -v ./extract/ | grep -vE '^\s+(bench|e2e)_test.go|^=== '

bench-kcore: e2e-deps build
	LDX_BENCH=1 $(GO) test -count=1 -tags e2e -timeout 30m -run '^TestBenchKcoreE2E$$' -v ./cmd/ldx/ | grep -E 'bench_kcore|^(--- |ok|FAIL)'

demo: build
	./testdata/sample/demo.sh

clean:
	rm -rf bin e2e.log

# ldx verify's static verdict beside crash, makedumpfile and drgn on real kernel memory and a mutation corpus; prints the agreement figure.
verify-agreement: e2e-deps build
	@mkdir -p bin
	$(GO) test -count=1 -tags e2e -timeout 80m -run '^TestVerifyAgreement$$' -v ./extract/verify/ >bin/verify-agreement.log 2>&1; s=$$?; grep -E '^(--- FAIL|FAIL|ok)|verify (agreement|disagreement)' bin/verify-agreement.log; [ $$s -eq 0 ] || .ci/failures bin/verify-agreement.log; exit $$s

# ldx dmesg and ldx info timed on a 1 GiB guest's dump in every input form
# (QEMU dump, livedump device, ldx vmcores): figures, not assertions.
bench-analysis: e2e-deps build
	LDX_BENCH=1 $(GO) test -count=1 -tags e2e -timeout 30m -run '^TestBenchAnalysis$$' -v ./cmd/ldx/ | grep -vE '^\s+analysis_e2e_test.go|^=== '

# Time and peak memory of the commands that read a distro debug vmlinux
# (verify --vmlinux, ps, vmcoreinfo generate, extract --vmlinux) on 6.1
# and 6.12 guests, page cache warm and cold: figures, not assertions.
bench-vmlinux: e2e-deps build
	LDX_BENCH=1 $(GO) test -count=1 -tags e2e -timeout 30m -run '^TestBenchVmlinux$$' -v ./cmd/ldx/ | grep -vE '^\s+\w+_test.go|^=== '

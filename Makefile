# ngbak — every command a user or CI needs. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
DEMO := .run/demo
SAMPLE := tests/fixtures/nano-graphrag-workdir

.PHONY: help demo test lint bench build release clean-run servers-up servers-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 24

demo: ## back up and restore the sample nano-graphrag working directory (no cloud, no Docker)
	$(CARGO) build --bin ngbak
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	./target/debug/ngbak --store $(DEMO)/store backup --kv-dir $(SAMPLE) --id demo_snapshot
	./target/debug/ngbak --store $(DEMO)/store list
	./target/debug/ngbak --store $(DEMO)/store verify demo_snapshot
	./target/debug/ngbak --store $(DEMO)/store restore demo_snapshot --kv-dir $(DEMO)/restored
	diff -r $(SAMPLE) $(DEMO)/restored && echo "demo: the restored working directory is identical to $(SAMPLE)"

test: ## the whole test suite against real Redis, LocalStack and ArcadeDB (installed and started here)
	tests/servers/with-servers.sh $(CARGO) test --locked

lint: ## formatting and clippy, warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

bench: ## throughput, peak RSS and the gzip -1 baseline at two data sizes, through S3
	$(CARGO) build --locked --release --bin ngbak
	tests/servers/with-servers.sh --servers "redis s3" python3 tests/bench/bench.py

build: ## debug build of the CLI and both Lambda functions
	$(CARGO) build --locked

release: ## optimised build of the CLI and both Lambda functions
	$(CARGO) build --locked --release

servers-up: ## start the test servers by hand (addresses in .run/servers.env)
	tests/servers/install.sh && tests/servers/start.sh

servers-down: ## stop them
	tests/servers/stop.sh

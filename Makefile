# ngbak — every command a user or CI needs. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
DEMO := .run/demo
SAMPLE := tests/fixtures/nano-graphrag-workdir

.PHONY: help demo test lint bench bench-consistency build release servers-up servers-down lambda-build lambda-package lambda-watch lambda-invoke-backup lambda-invoke-restore lambda-loop

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 24

demo: ## back up and restore the sample nano-graphrag working directory (no cloud, no Docker)
	$(CARGO) build --bin ngbak
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	./target/debug/ngbak consistency --kv-dir $(SAMPLE)
	@echo "demo: a signing key pair (README, Authenticity); every backup below is signed, every check trusts its public key"
	./target/debug/ngbak keygen --secret-key $(DEMO)/ngbak.key --public-key $(DEMO)/ngbak.pub
	./target/debug/ngbak --store $(DEMO)/store backup --kv-dir $(SAMPLE) --id demo_snapshot --signing-key $(DEMO)/ngbak.key
	./target/debug/ngbak --store $(DEMO)/store --trusted-key $(DEMO)/ngbak.pub list
	./target/debug/ngbak --store $(DEMO)/store --trusted-key $(DEMO)/ngbak.pub verify demo_snapshot
	@echo "demo: the deployment's links, checked inside the archive (nothing restored)"
	./target/debug/ngbak --store $(DEMO)/store consistency --backup demo_snapshot
	@echo "demo: the archive alone (as if downloaded and kept elsewhere) proves itself, and imports into another store"
	./target/debug/ngbak verify --file $(DEMO)/store/demo_snapshot.ngbak
	./target/debug/ngbak --store $(DEMO)/elsewhere import $(DEMO)/store/demo_snapshot.ngbak
	./target/debug/ngbak --store $(DEMO)/store --trusted-key $(DEMO)/ngbak.pub restore demo_snapshot --kv-dir $(DEMO)/restored
	diff -r $(SAMPLE) $(DEMO)/restored && echo "demo: the restored working directory is identical to $(SAMPLE)"
	./target/debug/ngbak consistency --kv-dir $(DEMO)/restored
	@echo "demo: now a change after the backup, a restore over it (which first takes a safety backup), and the rollback"
	echo '{"doc-new": {"content": "written after the backup"}}' > $(DEMO)/restored/kv_store_full_docs.json
	cp -r $(DEMO)/restored $(DEMO)/before-restore
	SAFETY=$$(./target/debug/ngbak --store $(DEMO)/store --trusted-key $(DEMO)/ngbak.pub --signing-key $(DEMO)/ngbak.key \
	  restore demo_snapshot --kv-dir $(DEMO)/restored --kv-mode replace --json \
	  | python3 -c 'import json,sys; print(json.load(sys.stdin)["safety_backup"])') && \
	  diff -r $(SAMPLE) $(DEMO)/restored && ./target/debug/ngbak --store $(DEMO)/store --trusted-key $(DEMO)/ngbak.pub list && \
	  ./target/debug/ngbak --store $(DEMO)/store --trusted-key $(DEMO)/ngbak.pub restore $$SAFETY --kv-dir $(DEMO)/restored --kv-mode replace --no-safety-backup && \
	  diff -r $(DEMO)/before-restore $(DEMO)/restored && echo "demo: rolled back to the state before the restore with $$SAFETY"
	@echo "demo: the HTTP API on the demo store (README, HTTP API): ngbak serve answers one request"
	NGBAK_API_TOKEN=demo-token ./target/debug/ngbak --store $(DEMO)/store serve --listen 127.0.0.1:0 2> $(DEMO)/serve.log & SERVE=$$!; \
	  for i in $$(seq 1 100); do grep -q 'listening on' $(DEMO)/serve.log && break; sleep 0.1; done; \
	  URL=$$(sed -n 's/^ngbak serve: listening on \([^ ]*\) .*/\1/p' $(DEMO)/serve.log); \
	  curl -sf -H 'Authorization: Bearer demo-token' "$${URL}api/v1/backups" \
	  | python3 -c 'import json,sys; print("demo: GET /api/v1/backups:", [b["backup_id"] for b in json.load(sys.stdin)["backups"]])'; \
	  status=$$?; kill $$SERVE; wait $$SERVE; \
	  echo "demo: for the operator page, run: ./target/debug/ngbak --store $(DEMO)/store serve --kv-dir $(DEMO)/restored (and open the address it prints)"; \
	  exit $$status

test: ## the whole test suite against real Redis, LocalStack and ArcadeDB (installed and started here)
	tests/servers/with-servers.sh $(CARGO) test --locked
	tests/servers/stop.sh --check

lint: ## formatting, clippy (warnings as errors), the SAM template, shell scripts
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	tests/servers/install.sh --with-deploy-tools
	infra/check.sh
	bash -n tests/servers/*.sh infra/*.sh localstack/*.sh localstack/init/ready.d/*.sh
	command -v shellcheck >/dev/null || (apt-get install -y -qq shellcheck >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq shellcheck) >/dev/null)
	shellcheck tests/servers/*.sh infra/*.sh localstack/*.sh localstack/init/ready.d/*.sh .ci/run
	python3 -c 'import yaml; yaml.safe_load(open("localstack/docker-compose.yml"))' 2>/dev/null || .tools/pytools/bin/python -c 'import yaml; yaml.safe_load(open("localstack/docker-compose.yml"))' 

BENCH_SERVERS ?= redis s3
bench: ## Redis side by side: ngbak vs the seed-style Python baseline vs redis-cli --rdb | gzip/pigz, table + chart; then bench-consistency's run
	$(CARGO) build --locked --release --bin ngbak $(if $(NGBAK_BENCH_POINTS),--example qdrant_double)
	tests/servers/install.sh --with-bench
	tests/bench/build-issue-baseline.sh
	tests/servers/with-servers.sh --servers "$(BENCH_SERVERS)" .tools/bench/bin/python tests/bench/bench.py
	python3 tests/bench/consistency.py

bench-consistency: ## ngbak consistency at 1,000,000 entities (NGBAK_BENCH_ENTITIES) vs a hand-written Python check
	$(CARGO) build --locked --release --bin ngbak
	python3 tests/bench/consistency.py

LAMBDA_PATH := PATH=$(CURDIR)/.tools/pytools/bin:$$PATH
EVENT ?= events/object-tags-added.json
API_EVENT ?= events/api-list-backups.json

LAMBDA_BINS := --bin ngbak-backup --bin ngbak-restore --bin ngbak-api
# CI's packaging profile: the release profile without LTO and at opt-level 0, so the arm64 cross
# build of the AWS SDK fits in CI's time; what it proves (target, layout, sizes) does not depend
# on optimisation. Deployments use `make lambda-build` (the full release profile).
LAMBDA_FAST := CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16

lambda-build: ## build the three functions (backup, restore, API) for Lambda (arm64, provided.al2023) into target/lambda/*/bootstrap.zip
	tests/servers/install.sh --with-deploy-tools
	rustup target add aarch64-unknown-linux-gnu
	$(LAMBDA_PATH) cargo lambda build --release --arm64 --output-format zip $(LAMBDA_BINS)
	infra/check_package.sh target/lambda

lambda-package: ## CI: the arm64 packages with a fast profile, then `sam build`, each checked (aarch64 bootstrap, size limits)
	tests/servers/install.sh --with-deploy-tools
	rustup target add aarch64-unknown-linux-gnu
	$(LAMBDA_PATH) $(LAMBDA_FAST) cargo lambda build --release --arm64 --output-format zip $(LAMBDA_BINS)
	infra/check_package.sh target/lambda
	cd infra && $(LAMBDA_PATH) $(LAMBDA_FAST) SAM_CLI_TELEMETRY=0 sam build --build-dir ../.aws-sam/build
	infra/check_package.sh .aws-sam/build

lambda-watch: ## serve the three functions locally on 127.0.0.1:9000 (set NGBAK_STORE, REDIS_URL … first)
	tests/servers/install.sh --with-deploy-tools
	$(LAMBDA_PATH) cargo lambda watch -A 127.0.0.1

lambda-invoke-backup: ## invoke the watched backup function with events/scheduled.json
	$(LAMBDA_PATH) cargo lambda invoke -A 127.0.0.1 ngbak-backup --data-file events/scheduled.json

lambda-invoke-restore: ## invoke the watched restore function with $(EVENT)
	$(LAMBDA_PATH) cargo lambda invoke -A 127.0.0.1 ngbak-restore --data-file $(EVENT)

lambda-invoke-api: ## invoke the watched API function with a Function URL event, $(API_EVENT) (default: list the backups)
	$(LAMBDA_PATH) cargo lambda invoke -A 127.0.0.1 ngbak-api --data-file $(API_EVENT)

lambda-loop: ## the whole event loop end to end against LocalStack in host mode (no Docker)
	tests/servers/with-servers.sh --servers "redis s3" localstack/loop.sh

build: ## debug build of the CLI and the Lambda functions
	$(CARGO) build --locked

release: ## optimised build of the CLI and the Lambda functions
	$(CARGO) build --locked --release

servers-up: ## start the test servers by hand (addresses in .run/servers.env)
	tests/servers/install.sh && tests/servers/start.sh

servers-down: ## stop them
	tests/servers/stop.sh

# proxmox_ai.hardening: every target installs what it needs (scripts/bootstrap.sh).
SHELL := /bin/bash
.DEFAULT_GOAL := help
STAGES ?= lint sanity pytest molecule sandbox build
SCENARIOS ?=
export STAGES SCENARIOS

.PHONY: help bootstrap image test lint sanity pytest molecule demo demo-down sandbox-up sandbox-down build changelog bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  make test STAGES=\"lint pytest\" SCENARIOS=\"harness\"   run a subset"

bootstrap: ## Install apt packages, the pinned virtualenv and the collection link
	@bash scripts/bootstrap.sh

image: bootstrap ## Build the Debian 12 systemd test image (once; reused while current)
	@bash scripts/build-image.sh

test: ## Run every quality gate CI runs (STAGES and SCENARIOS select a subset)
	@bash scripts/test.sh

lint: ## ansible-lint (production profile) and changelog lint
	@STAGES=lint bash scripts/test.sh

sanity: ## ansible-test sanity, offline
	@STAGES=sanity bash scripts/test.sh

pytest: ## Unit and integration tests (pytest)
	@STAGES=pytest bash scripts/test.sh

molecule: ## Molecule scenarios (SCENARIOS selects)
	@STAGES=molecule bash scripts/test.sh

build: bootstrap ## Build the collection tarball into build/dist/
	@bash scripts/build-collection.sh

changelog: bootstrap ## Render CHANGELOG.md from the fragments (release time)
	@source scripts/env.sh && antsibull-changelog release

demo: ## Bring up the sandbox and run the main job (site.yml) end to end
	@bash scripts/demo.sh

demo-down: ## Remove the sandbox containers and network
	@bash scripts/sandbox.sh down

sandbox-up: image ## Create the sandbox containers only
	@bash scripts/sandbox.sh up

sandbox-down: ## Remove the sandbox containers only
	@bash scripts/sandbox.sh down

bench: bootstrap ## Run the benchmarks in bench/ (they print their figures)
	@bash scripts/bench.sh

clean: ## Remove build output (not the venv, not the image)
	rm -rf build/dist build/sanity build/test-logs tests/output

# Thin entry points: the work is in scripts/ and the provsec CLI.
.PHONY: demo test lint bench lab-up lab-down bootstrap

bootstrap:
	@scripts/bootstrap

demo: bootstrap
	@scripts/demo

test: bootstrap
	@scripts/test

lint: bootstrap
	@scripts/lint

bench: bootstrap
	@.venv/bin/python bench/lab_up.py
	@.venv/bin/python bench/hardening.py
	@.venv/bin/python bench/exporter.py
	@.venv/bin/python bench/scan.py --lab
	@.venv/bin/python bench/report.py

lab-up: bootstrap
	@.venv/bin/provsec lab up --profile $${PROFILE:-province}

lab-down: bootstrap
	@if [ -f demo/mailbox/pid ]; then kill "$$(cat demo/mailbox/pid)" 2>/dev/null || true; rm -f demo/mailbox/pid; fi
	@.venv/bin/provsec lab down

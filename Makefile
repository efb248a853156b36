# sparknoise developer commands. `make test` builds .venv from nothing and runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Label Studio (the review round-trip test talks to a real server) lives in its own virtualenv so
# its pins cannot clash with ours.
LS_VENV := .venv-labelstudio
LS_STAMP := $(LS_VENV)/.installed-stamp
LABEL_STUDIO_VERSION := 1.23.2
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python

.PHONY: venv label-studio test test-fast test-classic test-connect lint demo evaluate zip wheel bench bench-scale bench-apply bench-detect bench-xgboost bench-annotators clean

# pyproject.toml gives ranges (what the wheel asks for); constraints.txt pins the versions tested here.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,xgboost,mlflow]"
	touch $(STAMP)

venv: $(STAMP)

$(LS_STAMP):
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install --quiet --upgrade pip
	$(LS_VENV)/bin/pip install --quiet "label-studio==$(LABEL_STUDIO_VERSION)"
	touch $(LS_STAMP)

label-studio: $(LS_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check sparknoise tests bench jobs dev

# The package as a zip for spark-submit --py-files (Spark does not install wheels from --py-files).
zip:
	$(PYTHON) dev/package_zip.py dist

# dist/sparknoise-<version>-py3-none-any.whl: for %pip install, Databricks wheel tasks, pip install.
wheel: $(STAMP)
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .

# The classic suite runs on two pytest workers (pytest-xdist, whole files per worker, each worker its own
# local[2] session): much of a Spark test's time is latency (job scheduling, Python workers starting),
# so two sessions on two cores finish sooner than one.
# Classic and Spark Connect suites run in separate processes: a Python process can hold either a
# classic session or a local Connect session, not both. Label Studio installs in the background while
# the first tests run (its round-trip test waits for $(LS_STAMP); the install log is $(LS_VENV).log).
test-classic: $(STAMP)
	@if [ ! -f $(LS_STAMP) ]; then echo "installing Label Studio into $(LS_VENV) in the background"; \
		($(MAKE) --no-print-directory label-studio > $(LS_VENV).log 2>&1 &); fi
	$(BIN)/pytest tests --ignore=tests/connect --durations=15 -n 2 --dist loadfile

test-connect: $(STAMP)
	$(BIN)/pytest tests/connect

test: lint test-classic test-connect

# The tier for iterating (a few minutes): lint, the parity core against cleanlab, bad input, the API on
# small frames, the source rules; no jobs, servers or Connect. `make test` is what CI runs.
FAST_TESTS := tests/test_source_rules.py tests/test_kernels.py tests/test_parity.py tests/test_bad_input.py \
	tests/test_types_and_weights.py tests/test_pandas_frames.py
test-fast: lint
	$(BIN)/pytest $(FAST_TESTS) -x -q --durations=5

demo: $(STAMP)
	$(BIN)/sparknoise demo

# Is label noise hurting my model? Injected noise on a quarter of the demo table (50,000 rows; run
# `make demo` first).
evaluate: $(STAMP)
	$(BIN)/sparknoise evaluate --config conf/evaluate.yaml --set input.path=demo-output/input \
		--set "input.where=id % 4 = 0" \
		--set output.detection=demo-output/evaluation_detection --set output.impact=demo-output/evaluation_impact \
		--set output.plots=demo-output/plots --set output.runs=demo-output/runs

# Benchmarks (not part of make test; each prints its figures and writes bench/results/*.json).
bench: $(STAMP)
	$(BIN)/python bench/bench_find_label_issues.py --sizes 1000000,10000000 --classes 10
	$(BIN)/python bench/bench_find_label_issues.py --sizes 1000000 --classes 100 \
		--out bench/results/find_label_issues_k100.json

bench-scale: $(STAMP)
	$(BIN)/python bench/bench_scale.py --cases 10000000x10,30000000x10,100000000x10,1000000x1000

bench-apply: $(STAMP)
	$(BIN)/python bench/bench_apply.py --rows 10000000 --classes 10 --verdicts 100000

bench-annotators: $(STAMP)
	$(BIN)/python bench/bench_multiannotator.py --cases 100000x5x2000,1000000x5x2000
	$(BIN)/python bench/bench_multiannotator.py --cases 10000000x5x2000 --no-cleanlab --out bench/results/multiannotator_10m.json

bench-detect: $(STAMP)
	$(BIN)/python bench/bench_detect_job.py --rows 10000000 --features 20 --classes 10

# The detect job at 1M rows on the demo generator: logistic regression vs XGBoost's Spark estimator.
bench-xgboost: $(STAMP)
	$(BIN)/python bench/bench_detect_job.py --rows 1000000 --features 10 --classes 5 \
		--out bench/results/detect_job_1m_logistic_regression.json
	$(BIN)/python bench/bench_detect_job.py --rows 1000000 --features 10 --classes 5 --estimator xgboost \
		--params '{"n_estimators": 100, "max_depth": 6, "num_workers": 2}' --out bench/results/detect_job_1m_xgboost.json

clean:
	rm -rf $(VENV) $(LS_VENV) build dist *.egg-info .pytest_cache demo-output spark-warehouse

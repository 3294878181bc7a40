# hwnas: every set-up step lives here, so a fresh clone needs only `make demo` / `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# The CPU build of torch (on this kind of machine it lies on disk); installed before the project
# so that pip never resolves torch to a multi-GB CUDA build. Override on a GPU machine.
TORCH_SPEC ?= torch==2.13.0
DEVICE ?= cpu
SPACE ?= mbv3-fmnist
HWNAS ?= $(PYTHON) -m hwnas.bench.cli
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
export HWNAS_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: setup setup-gpu gpu-check demo profile validate-lut supernet sample standalone device-bench predictors search leaderboard leaderboard-chain leaderboard-table test test-slow bench lint help house

help:
	@echo "make setup | setup-gpu | gpu-check | demo | test | profile DEVICE=cpu SPACE=mbv3-fmnist | validate-lut | supernet | sample | device-bench | predictors | search | leaderboard | leaderboard-table | bench | lint"

# onnxruntime's CPU and GPU builds are one import name: exactly one comes in, by extra (cpu | gpu).
# A machine set up with `make setup-gpu` keeps the GPU build when `make setup` runs again.
HAS_ORT_GPU = $(PYTHON) -c "import importlib.metadata as m; m.version('onnxruntime-gpu')" 2>/dev/null
.setup.stamp: pyproject.toml
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_SPEC)"
	@# dist: Ray, so the Ray tests run in CI (make test)
	if ! $(HAS_ORT_GPU); then $(PIP) install -e ".[cpu,dev,dist]"; else $(PIP) install -e ".[gpu,dev,dist]"; fi
	@touch $@

# An NVIDIA GPU machine: onnxruntime-gpu, TensorRT and NVML instead of the CPU build, which is
# removed first (left beside the GPU build it would hide the CUDA provider); pass a CUDA torch
# with TORCH_SPEC. Then `make gpu-check`.
setup-gpu:
	-$(PIP) uninstall -y onnxruntime onnxruntime-gpu
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[gpu,dev,dist]"
	@touch .setup.stamp

# On a machine with an NVIDIA GPU: every GPU backend profiles a small table, validates it end to
# end, times a conv net (kernel placement, NVML energy, fp16 vs fp32); one report in GPU_CHECK_OUT.
# Without a GPU it refuses with one line.
GPU_CHECK_OUT ?= runs/gpu-check
GPU_CHECK_ARGS ?=
gpu-check:
	@$(HWNAS) gpu-check --out $(GPU_CHECK_OUT) $(GPU_CHECK_ARGS)

setup: .setup.stamp
	@if [ ! -e "$(FMNIST_DIR)/train-images-idx3-ubyte.gz" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y dataset-fashion-mnist || (apt-get update && apt-get install -y dataset-fashion-mnist)) \
	      || echo "warning: could not install dataset-fashion-mnist; supernet stages need it"; \
	  else echo "warning: Fashion-MNIST missing at $(FMNIST_DIR); install Debian's dataset-fashion-mnist"; fi; \
	fi

# The main job on the embedded defaults (CPU, Fashion-MNIST, small budgets), written under
# DEMO_DIR so the committed reference results stay as they are. Each stage resumes when rerun.
DEMO_DIR ?= runs/demo
DEMO_DEVICE ?= cpu:threads=1
DEMO_DEVICE_ID ?= cpu-t1
demo: setup
	$(HWNAS) spaces
	$(HWNAS) profile --device $(DEMO_DEVICE) --space mbv3-fmnist --out-dir $(DEMO_DIR)/tables --resume
	$(HWNAS) validate-lut --device $(DEMO_DEVICE) --space mbv3-fmnist --samples 20 \
	  --out-dir $(DEMO_DIR)/tables --resume
	$(MAKE) --no-print-directory supernet sample SPACE=mbv3-fmnist \
	  SUPERNET_CKPT=$(DEMO_DIR)/supernet/mbv3-fmnist.ckpt \
	  SAMPLES_OUT=$(DEMO_DIR)/accuracies/mbv3-fmnist/supernet-samples.parquet
	$(HWNAS) predictors evaluate --space mbv3-fmnist --target val_acc \
	  --table $(DEMO_DIR)/accuracies/mbv3-fmnist/supernet-samples.parquet \
	  --predictors bilinear,gcn,xgb,rf,ridge --train-sizes 20,50,100 --seeds 3 \
	  --out $(DEMO_DIR)/predictors/mbv3-fmnist-supernet
	$(HWNAS) tables import --space nb201 --unit ms --columns gold_6240,pixel3 \
	  --out $(DEMO_DIR)/tables/nb201/help-latency.parquet \
	  $(HWNAS_DATA_DIR)/help-latency/help_nasbench201_latency_ms.csv
	$(HWNAS) leaderboard --track mbv3-fmnist --supernet $(DEMO_DIR)/supernet/mbv3-fmnist.ckpt \
	  --tables-dir $(DEMO_DIR)/tables --device $(DEMO_DEVICE_ID) --methods random,evolution,binas,gcn \
	  --budget 20 --seeds 1 --param evolution.population=8 --quantile 0.25 --stages search,measure,report \
	  --out $(DEMO_DIR)/leaderboards
	$(HWNAS) leaderboard --track nb201 --methods random,evolution,binas,gcn --seeds 2 \
	  --out $(DEMO_DIR)/leaderboards
	@echo "demo outputs: $(DEMO_DIR) (tables, validation report, supernet samples, predictor comparison, leaderboards)"

# Resumable: a killed or --limit run continues where it stopped (PROFILE_ARGS="--limit 100" etc.).
# The committed mbv3-fmnist table was made with DEVICE=cpu:threads=1 (-> cpu-t1.parquet).
PROFILE_ARGS ?=
profile: setup
	$(HWNAS) profile --device $(DEVICE) --space $(SPACE) --resume $(PROFILE_ARGS)

# --resume reuses whole-network measurements already taken; delete
# results/tables/$(SPACE)/<device-id>-validation-networks.* to measure them again.
# Whole networks are timed to a 1% CI of the reference ratio (blocks: 2%): at 2% the test-retest
# noise floor was 90-92% within +-5%, at 1% 98% (60 networks, cpu:threads=1).
LUT_SAMPLES ?= 60
LUT_ARGS ?= --rel-ci 0.01
validate-lut: setup
	$(HWNAS) validate-lut --device $(DEVICE) --space $(SPACE) --samples $(LUT_SAMPLES) --resume $(LUT_ARGS)

# The supernet recipe (sandwich rule + in-place distillation, BigNAS/OFA), at a budget sized for
# `make demo` on 2 shared cores; `make standalone` trains the same recipe at the reference budget.
SUPERNET_CKPT ?= runs/supernet/$(SPACE).ckpt
SUPERNET_ARGS ?= --epochs 3 --train-per-epoch 10000 --sampler sandwich --sandwich-random 2 --distill
SAMPLE_N ?= 200
SAMPLE_ARGS ?= --calib-images 256 --val-images 1000
SAMPLES_OUT ?= results/accuracies/$(SPACE)/supernet-samples.parquet

supernet: setup
	OMP_WAIT_POLICY=PASSIVE $(HWNAS) supernet train --space $(SPACE) --data fashion-mnist \
	  $(SUPERNET_ARGS) --out $(SUPERNET_CKPT) --resume

sample: setup
	OMP_WAIT_POLICY=PASSIVE $(HWNAS) sample --space $(SPACE) --supernet $(SUPERNET_CKPT) \
	  --n $(SAMPLE_N) $(SAMPLE_ARGS) --out $(SAMPLES_OUT) --summary $(SAMPLES_OUT:.parquet=.md)

# The chain track's ground truth: 40 archs stratified over the latency range of the measured
# cpu-t1 table, each trained from scratch with 2 seeds (bench/engine/standalone.py has the
# protocol), then the supernet's estimate of each and the report. Resumable at every step;
# STANDALONE_EXECUTOR=ray runs on Ray. Not part of the demo (about 1-2 h on 2 cores).
STANDALONE_DIR ?= results/accuracies/$(SPACE)
STANDALONE_TABLE ?= results/tables/$(SPACE)/cpu-t1.parquet
STANDALONE_EXECUTOR ?= process
STANDALONE_SUPERNET ?= runs/supernet/$(SPACE)-reference.ckpt
STANDALONE_SUPERNET_ARGS ?= --epochs 4 --train-per-epoch 10000 --sampler sandwich --sandwich-random 2 --distill --threads 1
standalone: setup
	OMP_WAIT_POLICY=PASSIVE $(HWNAS) standalone train --space $(SPACE) --table $(STANDALONE_TABLE) \
	  --out $(STANDALONE_DIR)/standalone.parquet --executor $(STANDALONE_EXECUTOR)
	OMP_WAIT_POLICY=PASSIVE $(HWNAS) supernet train --space $(SPACE) --data fashion-mnist \
	  $(STANDALONE_SUPERNET_ARGS) --out $(STANDALONE_SUPERNET) --resume
	OMP_WAIT_POLICY=PASSIVE $(HWNAS) standalone supernet --space $(SPACE) --supernet $(STANDALONE_SUPERNET) \
	  --out $(STANDALONE_DIR)/standalone.parquet
	$(HWNAS) standalone report --out $(STANDALONE_DIR)/standalone.parquet --report-dir $(STANDALONE_DIR)

# Your own NB201-style table of a chain space on a device (bench/experiments/device_bench.py): a pool
# of DEVICE_BENCH_N archs spread over the calibrated latency range of results/tables/$(SPACE)/<device>,
# trained with the pool protocol (bench/engine/protocol.py: 2 epochs x 10k, one thread; a second
# seed on a third; about 8 CPU hours for 300) and timed end to end (validate-lut's protocol). The
# time stage needs a quiet machine, so it is not in the default stages: run it alone,
# `make device-bench DEVICE_BENCH_STAGES=time,report`. Every stage resumes. DEVICE=cpu means one thread.
DEVICE_BENCH_DEVICE = $(if $(filter cpu,$(DEVICE)),cpu:threads=1,$(DEVICE))
DEVICE_BENCH_N ?= 300
DEVICE_BENCH_STAGES ?= select,train,reproduce,report
DEVICE_BENCH_OUT ?= results/device-bench
DEVICE_BENCH_ARGS ?= --executor process --workers 1
device-bench: setup
	OMP_WAIT_POLICY=PASSIVE nice -n 10 $(HWNAS) device-bench --space $(SPACE) --device $(DEVICE_BENCH_DEVICE) \
	  --n $(DEVICE_BENCH_N) --stages $(DEVICE_BENCH_STAGES) --out-dir $(DEVICE_BENCH_OUT) $(DEVICE_BENCH_ARGS)

# NB201 accuracy (200/12 ep), HELP latency (NB201 + FBNet), few-shot transfer, and the
# mbv3-fmnist supernet samples when results/accuracies/mbv3-fmnist/supernet-samples.parquet exists.
predictors: setup
	nice -n 10 $(HWNAS) predictors standard --out results/predictors
	nice -n 10 $(HWNAS) predictors ws-fitting --out results/predictors
	@if [ -e $(STANDALONE_DIR)/standalone.parquet ] && [ -e $(SAMPLES_OUT) ]; then \
	  nice -n 10 $(HWNAS) standalone predictors --space $(SPACE) --out $(STANDALONE_DIR)/standalone.parquet \
	    --samples $(SAMPLES_OUT) --report-dir results/predictors/$(SPACE)-standalone; \
	else echo "predictors vs stand-alone truth skipped: run make standalone and make sample first"; fi

# One search, by default on the NB201 track (benchmark accuracy, HELP pixel3 latency); e.g.
# make search SEARCH_SPACE=mbv3-fmnist ACCURACY=supernet:runs/demo/supernet/mbv3-fmnist.ckpt \
#   CONSTRAINT='latency_ms<=0.5@cpu-t1'
SEARCH_SPACE ?= nb201
SEARCH_METHODS ?= random,evolution
ACCURACY ?= table:$(HWNAS_DATA_DIR)/nb201-acc-200ep/nb201_cifar10_200ep.csv:cifar10_test_acc
CONSTRAINT ?= latency_ms<=8@table:$(HWNAS_DATA_DIR)/help-latency/help_nasbench201_latency_ms.csv:pixel3
BUDGET ?= 100
SEEDS ?= 5
SEARCH_OUT ?= runs/search/$(SEARCH_SPACE)
search: setup
	$(HWNAS) search --space $(SEARCH_SPACE) --method $(SEARCH_METHODS) --accuracy "$(ACCURACY)" \
	  --constraint "$(CONSTRAINT)" --budget $(BUDGET) --seeds $(SEEDS) --out $(SEARCH_OUT)

# The committed NB201 boards, the field's protocol (search on validation, score on test): nb201 queries read
# the cifar10-valid validation accuracy, nb201-ws the one-shot supernet's estimates; both are scored by the
# 200-epoch CIFAR-10 test table. Query-based methods, one query per functional class, three HELP devices x
# 25/50/75% bound quantiles, 100 and 200 queries, 100 paired seeds (a table run takes under a CPU second).
LEADERBOARD_SEEDS ?= 100
LEADERBOARD_ARGS ?= --executor process --workers 2
leaderboard: setup
	nice -n 15 $(HWNAS) leaderboard --track nb201 --seeds $(LEADERBOARD_SEEDS) --budget 100,200 --quantile 0.25,0.5,0.75 --out results/leaderboards $(LEADERBOARD_ARGS)
	nice -n 15 $(HWNAS) leaderboard --track nb201-ws --seeds $(LEADERBOARD_SEEDS) --budget 100,200 --quantile 0.25,0.5,0.75 --out results/leaderboards $(LEADERBOARD_ARGS)

# The chain table board: query methods search the device-bench pool (make device-bench, complete:
# every arch timed and trained) as a table; 50 seeds, bounds at 4 quantiles of measured latency.
leaderboard-table: setup
	nice -n 15 $(HWNAS) leaderboard --track mbv3-fmnist-table --pool $(DEVICE_BENCH_OUT)/mbv3-fmnist/cpu-t1.parquet \
	  --seeds 50 --budget 20,50 --quantile 0.1,0.25,0.5,0.75 --out results/leaderboards $(LEADERBOARD_ARGS)

# The chain track: every method on mbv3-fmnist under cpu-t1's calibrated latency (25%/50% quantiles),
# 8 seeds, query methods on the reference supernet, every method ending with the same 10 final
# validation reads (each run's own top-1 pick and its validated pick both shown); each pick timed end
# to end (validate-lut's protocol: run on a quiet machine) and trained stand-alone as a device-bench
# pool row (its protocol, seed 0), judged against the pool's best arch under each bound (hours). Every stage
# resumes; CHAIN_ARGS="--stages search,report" runs a part.
CHAIN_ARGS ?=
leaderboard-chain: setup
	OMP_WAIT_POLICY=PASSIVE $(HWNAS) leaderboard --track mbv3-fmnist --supernet $(STANDALONE_SUPERNET) --seeds 8 \
	  --quantile 0.25,0.5 --budget 100 --final-reads 10 --pool results/device-bench/mbv3-fmnist/cpu-t1.parquet \
	  --out results/leaderboards $(CHAIN_ARGS)

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
# The fast suite runs on TEST_WORKERS processes (pytest-xdist; 2 cores here: 314 s serial, 178 s
# on two); the slow end-to-end tests (executors, Ray, agent restarts, kill -9) run one at a time.
TEST_WORKERS ?= 2
test: setup
	@$(PYTHON) -m pytest -q -n $(TEST_WORKERS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc

test-slow: setup
	$(PYTHON) -m pytest -q -m slow

bench: setup
	$(PYTHON) -m pytest -q perf --benchmark-enable -p no:cacheprovider

# The stack (core -> devices -> predictors -> search -> bench) is checked by tests/test_layers.py.
lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/test_layers.py

# The drawing of the house (packages as rooms, imports as arrows, read from the code) in
# docs/house.md, beside the tree before the house step (HOUSE_BEFORE, a git revision).
HOUSE_BEFORE ?= d3b8a45
house:
	@{ echo "# The house, drawn from the code"; echo; \
	  echo "Rooms are the stack's packages and sub-packages (lines of code); an arrow counts the import"; \
	  echo "statements from one room to another. Made by \`make house\` (tools/draw_house.py); the first"; \
	  echo "drawing is the tree at $(HOUSE_BEFORE), before the house's second step."; echo; \
	  $(PYTHON) tools/draw_house.py --before $(HOUSE_BEFORE); } > docs/house.md.tmp && mv docs/house.md.tmp docs/house.md

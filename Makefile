# Thin front over CMake. `make run` and `make test` install what is missing first.
DEBS := cmake gcc make pkg-config openssl libgrpc-dev libprotobuf-c-dev protobuf-c-compiler \
        libnanopb-dev nanopb libwiredtiger-dev libssl-dev libjemalloc-dev etcd-client etcd-server \
        python3 python3-etcd3 python3-pytest python3-grpcio procps libcrypt-dev \
        libmicrohttpd-dev libjansson-dev libgnutls28-dev curl libyaml-dev liburiparser-dev libnghttp2-dev \
        libxxhash-dev
# make fuzz only: clang with libFuzzer.
FUZZ_DEBS := clang libclang-rt-14-dev
JOBS ?= 2
# Tests mostly wait (elections, lease TTLs, etcdctl processes): at 2 jobs the
# 2 cores were ~50% busy through `make test`; a third job fills them.
TEST_JOBS ?= 3
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps build build-asan run test test-unit bench fuzz faults clean

all: build

# Install only what is missing: dpkg-query answers without the network.
deps:
	@missing=""; for p in $(DEBS) $(EXTRA_DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

# Order-only: under make -j, configuring must still wait for the packages.
$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

$(ASAN_BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMETAD_SANITIZE=ON

build-asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j$(JOBS)

run: build
	$(BUILD)/metad --name default --data-dir default.metad

# Every test twice: an optimised build, then ASan+UBSan.
test: build build-asan
	cd $(BUILD) && ctest --output-on-failure -j$(TEST_JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j$(TEST_JOBS) -LE slow

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L unit

bench: build
	tools/bench/run.sh

# Each harness of tests/fuzz for FUZZ_SECONDS under libFuzzer (+ASan/UBSan),
# starting from its seed corpus; new inputs go to $(FUZZ_BUILD)/corpus, and
# any crash input should be added to tests/fuzz/corpus/ as a regression test.
fuzz:
	$(MAKE) deps EXTRA_DEBS="$(FUZZ_DEBS)"
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMETAD_FUZZ=ON
	set -e; for f in tests/fuzz/fuzz_*.c; do \
	  n=$$(basename $$f .c); c=$${n#fuzz_}; \
	  cmake --build $(FUZZ_BUILD) -j$(JOBS) --target $$n; \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$c; \
	  $(FUZZ_BUILD)/tests/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(FUZZ_BUILD)/corpus/$$c tests/fuzz/corpus/$$c; \
	done

# Seeded fault runs on 3 members (tests/faults/run.py): FAULT_RUNS runs of
# FAULT_DURATION seconds from seed FAULT_SEED; one line per run, then a summary.
FAULT_RUNS ?= 200
FAULT_SEED ?= 1
FAULT_DURATION ?= 20
faults: build
	METAD_BIN=$(BUILD)/metad /usr/bin/python3 tests/faults/run.py \
	  --runs $(FAULT_RUNS) --seed $(FAULT_SEED) --duration $(FAULT_DURATION)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

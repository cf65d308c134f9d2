# Two entry points: `make demo` and `make test`. Both install what they need, idempotently.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
DEMO_OUT ?= demo_out

.PHONY: demo test install sysdeps clean

sysdeps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  if ! dpkg -s libusb-1.0-0 libgomp1 >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 libgomp1 >/dev/null; \
	  fi; \
	fi

$(STAMP): pyproject.toml Makefile
	$(MAKE) sysdeps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	$(PY) -m pip install -q --no-deps 'lmms-eval==0.7.3'  # parity tests against its vsibench task
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: install
	$(VENV)/bin/vlm3r-data build --dataset demo --out $(DEMO_OUT)

test: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO_OUT)

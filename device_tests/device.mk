# Emulated ARM64 device tests (issue 9). Included by the main Makefile, which defines PY.
#   make device          build device_tests/.device/ (cached; rebuilt when its recipe changes)
#   make device-tests    build the device if needed, then run device_tests/
# ExecuTorch in the guest is opt-in (it drags in PyPI's CUDA aarch64 torch build):
#   make device-tests DEVICE_RUNTIMES=litert,executorch
PY ?= .venv/bin/python
DEVICE_RUNTIMES ?=

.PHONY: device device-optional device-tests device-clean
device:
	DEVICE_RUNTIMES=$(DEVICE_RUNTIMES) $(PY) device_tests/setup_device.py

# for `make bench-mobile`: a machine that cannot build the device still benchmarks on the host (the
# bench records the device column as skipped, with the reason)
device-optional:
	-DEVICE_RUNTIMES=$(DEVICE_RUNTIMES) $(PY) device_tests/setup_device.py || \
	  echo "[device] no emulated ARM64 device on this machine: its column is recorded as skipped"

device-tests: device
	DEVICE_RUNTIMES=$(DEVICE_RUNTIMES) $(PY) -m pytest device_tests -q

device-clean:
	rm -rf device_tests/.device

#!/usr/bin/env python3
"""Build the emulated ARM64 device under device_tests/.device/ (git-ignored), once.

The device is user-mode QEMU (`qemu-aarch64`, Debian package qemu-user) running an arm64
Debian userland unpacked into a sysroot: no binfmt, no chroot, the host's dpkg untouched.

    sysroot/         arm64 .debs of python3.11 and its libraries, unpacked with dpkg-deb -x
    cpu/<model>/     one root per emulated core: its own proc/cpuinfo and sys/.../midr_el1
                     (LiteRT's cpuinfo crashes on the host's x86 /proc/cpuinfo), everything
                     else symlinked to sysroot/. `qemu-aarch64 -cpu <model> -L cpu/<model>`.
    site/<runtime>/  aarch64 wheels of one guest runtime (pip install --target)
    plugin/          insn_count.so, built from device_tests/plugin/insn_count.c
    device.json      what was built: recipe hash, runtimes and their installed footprint

Each part is rebuilt only when its inputs change: a part's stamp file holds the hash of the
recipe pieces it was built from. Usage: setup_device.py [--check] [--runtimes litert,executorch]
Runtimes marked "default": false in recipe.json (ExecuTorch: it drags in a CUDA torch build)
are built only when asked for, by --runtimes or DEVICE_RUNTIMES=litert,executorch.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPE = HERE / "recipe.json"
PLUGIN_SRC = HERE / "plugin" / "insn_count.c"
DEVICE = Path(os.environ.get("DEVICE_DIR", HERE / ".device"))
SYSROOT = DEVICE / "sysroot"

# AT_HWCAP bits of arm64 Linux, in bit order: the Features line of /proc/cpuinfo.
HWCAP_NAMES = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
               "jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat "
               "ilrcpc flagm ssbs sb paca pacg").split()
HWCAP2_NAMES = ("dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm "
                "svef32mm svef64mm svebf16 i8mm bf16 dgh rng bti mte").split()


def log(msg: str) -> None:
    print(f"[device] {msg}", flush=True)


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def recipe_hash() -> str:
    """Hash of every file the device is built from: what device.json records and the tests check."""
    h = hashlib.sha256()
    for p in (RECIPE, Path(__file__).resolve(), PLUGIN_SRC):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def stamp_ok(part: Path, key: str) -> bool:
    s = part / ".stamp"
    return s.exists() and s.read_text().strip() == key


def write_stamp(part: Path, key: str) -> None:
    (part / ".stamp").write_text(key + "\n")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = Path(root) / f
            if not p.is_symlink():
                total += p.stat().st_size
    return total


# ---------------------------------------------------------------- host tools
def ensure_host_tools(recipe: dict) -> str:
    qemu = shutil.which(recipe["qemu"])
    need_gcc = shutil.which("gcc") is None
    if qemu and not need_gcc:
        return qemu
    pkgs = list(recipe["host_apt_packages"]) + (["gcc"] if need_gcc else [])
    if os.geteuid() != 0:
        sys.exit(f"[device] {recipe['qemu']} or gcc missing; run as root or: apt-get install {' '.join(pkgs)}")
    log(f"apt-get install {' '.join(pkgs)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs], env=env,
        stdout=subprocess.DEVNULL)
    qemu = shutil.which(recipe["qemu"])
    if not qemu:
        sys.exit(f"[device] {recipe['qemu']} still missing after apt-get install")
    return qemu


# ---------------------------------------------------------------- sysroot
def build_sysroot(recipe: dict) -> None:
    deb = recipe["debian"]
    key = digest(deb)
    if stamp_ok(SYSROOT, key):
        return
    t0 = time.time()
    apt = DEVICE / "apt"
    shutil.rmtree(apt, ignore_errors=True)
    for d in ("state/lists/partial", "cache/archives/partial", "etc/sources.list.d",
              "etc/preferences.d", "etc/apt.conf.d"):
        (apt / d).mkdir(parents=True)
    (apt / "state" / "status").write_text("")  # an empty private dpkg status: fetch the whole closure
    (apt / "etc" / "sources.list").write_text("\n".join(deb["sources"]) + "\n")
    opts = []
    for k, v in {
        "APT::Architecture": deb["arch"], "APT::Architectures::": deb["arch"],
        "Dir::State": apt / "state", "Dir::State::status": apt / "state" / "status",
        "Dir::Cache": apt / "cache", "Dir::Etc::SourceList": apt / "etc" / "sources.list",
        "Dir::Etc::SourceParts": apt / "etc" / "sources.list.d",
        "Dir::Etc::Parts": apt / "etc" / "apt.conf.d",
        "Dir::Etc::Preferences": apt / "etc" / "preferences",
        "Dir::Etc::PreferencesParts": apt / "etc" / "preferences.d",
        "Debug::NoLocking": "1", "APT::Install-Recommends": "0",
    }.items():
        opts += ["-o", f"{k}={v}"]
    log(f"downloading arm64 packages: {' '.join(deb['packages'])} (+ dependencies)")
    run(["apt-get", *opts, "update", "-qq"])
    run(["apt-get", *opts, "install", "--download-only", "-y", "-qq", *deb["packages"]],
        stdout=subprocess.DEVNULL)
    shutil.rmtree(SYSROOT, ignore_errors=True)
    SYSROOT.mkdir(parents=True)
    debs = sorted((apt / "cache" / "archives").glob("*.deb"))
    for d in debs:
        run(["dpkg-deb", "-x", str(d), str(SYSROOT)])
    (SYSROOT / "packages.txt").write_text("\n".join(d.name for d in debs) + "\n")
    shutil.rmtree(apt / "cache" / "archives")  # the .debs are unpacked: don't keep them twice
    log(f"sysroot: {len(debs)} packages, {dir_bytes(SYSROOT) / 1e6:.0f} MB, {time.time() - t0:.0f} s")
    write_stamp(SYSROOT, key)


# ---------------------------------------------------------------- per-core roots
def guest_hwcaps(qemu: str, cpu: str, recipe: dict) -> tuple[int, int]:
    code = ("import ctypes; l = ctypes.CDLL(None); l.getauxval.restype = ctypes.c_ulong; "
            "print(l.getauxval(16), l.getauxval(26))")
    out = run([qemu, "-cpu", cpu, "-L", str(SYSROOT), str(SYSROOT) + recipe["guest_python"],
               "-I", "-c", code], capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1])


def build_cpu_roots(qemu: str, recipe: dict) -> dict:
    info = {}
    for cpu, spec in recipe["cpus"].items():
        root = DEVICE / "cpu" / cpu
        key = digest([spec, (SYSROOT / ".stamp").read_text(), HWCAP_NAMES, HWCAP2_NAMES])
        if stamp_ok(root, key):
            info[cpu] = json.loads((root / "cpu.json").read_text())
            continue
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        for entry in SYSROOT.iterdir():  # everything but proc/ and sys/ comes from the sysroot
            if entry.name not in ("proc", "sys") and entry.is_dir():
                (root / entry.name).symlink_to(entry.resolve())
        # The Features line lists what this emulated core really has (its HWCAPs, read in the
        # guest): claiming e.g. dotprod on a core without it makes XNNPACK emit illegal instructions.
        hw, hw2 = guest_hwcaps(qemu, cpu, recipe)
        feats = [n for i, n in enumerate(HWCAP_NAMES) if hw >> i & 1]
        feats += [n for i, n in enumerate(HWCAP2_NAMES) if hw2 >> i & 1]
        midr = int(spec["midr"], 16)
        (root / "proc").mkdir()
        (root / "proc" / "cpuinfo").write_text(
            "processor\t: 0\nBogoMIPS\t: 50.00\n"
            f"Features\t: {' '.join(feats)}\n"
            f"CPU implementer\t: 0x{midr >> 24 & 0xff:02x}\n"
            f"CPU architecture: 8\n"
            f"CPU variant\t: 0x{midr >> 20 & 0xf:x}\n"
            f"CPU part\t: 0x{midr >> 4 & 0xfff:03x}\n"
            f"CPU revision\t: {midr & 0xf}\n\n")
        cpus = root / "sys" / "devices" / "system" / "cpu"
        ident = cpus / "cpu0" / "regs" / "identification"
        ident.mkdir(parents=True)
        (ident / "midr_el1").write_text(f"0x{midr:016x}\n")
        for f in ("possible", "present", "online"):  # one core: runtimes size thread pools to 1
            (cpus / f).write_text("0\n")
        (cpus / "kernel_max").write_text("0\n")
        info[cpu] = {"midr": spec["midr"], "features": feats, "hwcap": hw, "hwcap2": hw2}
        (root / "cpu.json").write_text(json.dumps(info[cpu], indent=1))
        log(f"cpu root {cpu}: {' '.join(feats)}")
        write_stamp(root, key)
    return info


# ---------------------------------------------------------------- guest runtimes
def pip_tag_args(recipe: dict) -> list[str]:
    t = recipe["wheel_tags"]
    args = ["--only-binary=:all:", "--python-version", t["python_version"],
            "--implementation", t["implementation"], "--abi", t["abi"]]
    for p in t["platforms"]:
        args += ["--platform", p]
    return args


def pip_base() -> list[str]:
    # --isolated: ignore this machine's pip config (a constraint file and local x86 indexes)
    cmd = [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check"]
    cert = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.exists(cert):
        cmd += ["--cert", cert]
    return cmd


def build_runtime(name: str, spec: dict, recipe: dict, qemu: str) -> dict:
    site = DEVICE / "site" / name
    wheels = DEVICE / "wheels" / name
    key = digest([spec, recipe["wheel_tags"], (SYSROOT / ".stamp").read_text()])
    if stamp_ok(site, key):
        return json.loads((site / "runtime.json").read_text())
    t0 = time.time()
    shutil.rmtree(site, ignore_errors=True)
    wheels.mkdir(parents=True, exist_ok=True)
    log(f"runtime {name}: downloading aarch64 wheels: {' '.join(spec['requirements'])}")
    # --no-deps: the recipe pins the whole closure, so what is installed is exactly what is listed
    run(pip_base() + ["download", "-q", "--no-deps", "-d", str(wheels), *pip_tag_args(recipe),
                      *spec["requirements"]])
    norm = lambda s: s.lower().replace("-", "_").replace(".", "_")
    pins = {(norm(r.split("==")[0]), r.split("==")[1]) for r in spec["requirements"]}
    files = [str(w) for w in sorted(wheels.glob("*.whl"))
             if (norm(w.name.split("-")[0]), w.name.split("-")[1]) in pins]
    if len(files) != len(pins):
        sys.exit(f"[device] runtime {name}: expected {len(pins)} wheels, found {len(files)}")
    log(f"runtime {name}: installing {len(files)} wheels")
    run(pip_base() + ["install", "-q", "--no-deps", "--no-index", "--no-compile", "--target", str(site),
                      *pip_tag_args(recipe), *files])
    info = {"requirements": spec["requirements"], "needs": spec.get("needs", []),
            "wheel_bytes": sum(os.path.getsize(f) for f in files), "unpruned_bytes": dir_bytes(site)}
    for folder, keep in spec.get("keep_only", {}).items():
        prune(site, folder, keep)
    info["footprint_bytes"] = dir_bytes(site)
    shutil.rmtree(wheels)  # installed: the wheel cache would only double the disk use
    if spec.get("probe"):
        sites = [site] + [DEVICE / "site" / n for n in spec.get("needs", [])]
        cpu = next(iter(recipe["cpus"]))
        probe = subprocess.run([qemu, "-cpu", cpu, "-L", str(DEVICE / "cpu" / cpu),
                                str(SYSROOT) + recipe["guest_python"], "-c", spec["probe"]],
                               env=guest_env(sites), capture_output=True, text=True)
        if probe.returncode != 0:
            sys.exit(f"[device] runtime {name}: import probe failed in the guest:\n{probe.stderr[-3000:]}")
    (site / "runtime.json").write_text(json.dumps(info, indent=1))
    log(f"runtime {name}: {info['footprint_bytes'] / 1e6:.0f} MB installed, {time.time() - t0:.0f} s")
    write_stamp(site, key)
    return info


def prune(site: Path, folder: str, keep: list[str]) -> None:
    """Delete every file under site/folder but Python files and those named in `keep`: slimming
    to the shared libraries the runtime really opens."""
    base = site / folder
    for root, _dirs, files in os.walk(base):
        for f in files:
            if f not in keep and not f.endswith(".py"):
                (Path(root) / f).unlink()


def guest_env(sites: list[Path]) -> dict:
    """Environment for the guest Python: nothing from the host venv leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "LD_"))}
    env.update(PYTHONPATH=":".join(str(s) for s in sites), PYTHONHASHSEED="0",
               PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
    return env


# ---------------------------------------------------------------- plugin
def build_plugin() -> Path:
    out = DEVICE / "plugin" / "insn_count.so"
    key = hashlib.sha256(PLUGIN_SRC.read_bytes()).hexdigest()[:16]
    if out.exists() and stamp_ok(out.parent, key):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    log("building the instruction-counting plugin")
    run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(PLUGIN_SRC)])
    write_stamp(out.parent, key)
    return out


def wanted_runtimes(recipe: dict, arg: str | None) -> list[str]:
    arg = arg or os.environ.get("DEVICE_RUNTIMES", "")
    names = [n for n in arg.replace(" ", ",").split(",") if n]
    if not names:
        names = [n for n, s in recipe["runtimes"].items() if s.get("default")]
    unknown = set(names) - set(recipe["runtimes"])
    if unknown:
        sys.exit(f"[device] unknown runtimes {sorted(unknown)}; recipe has {sorted(recipe['runtimes'])}")
    for n in list(names):  # a runtime's "needs" (e.g. numpy from litert) come along
        names += [d for d in recipe["runtimes"][n].get("needs", []) if d not in names]
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtimes", help="comma-separated guest runtimes to install (default: the recipe's defaults)")
    ap.add_argument("--check", action="store_true", help="only say whether the device is built and current")
    args = ap.parse_args()
    recipe = json.loads(RECIPE.read_text())
    want = wanted_runtimes(recipe, args.runtimes)
    dev_json = DEVICE / "device.json"
    if args.check:
        cur = json.loads(dev_json.read_text()) if dev_json.exists() else {}
        ok = cur.get("recipe_hash") == recipe_hash() and set(want) <= set(cur.get("runtimes", {}))
        print("device is current" if ok else "device missing or stale")
        sys.exit(0 if ok else 1)
    t0 = time.time()
    DEVICE.mkdir(parents=True, exist_ok=True)
    qemu = ensure_host_tools(recipe)
    build_sysroot(recipe)
    cpus = build_cpu_roots(qemu, recipe)
    plugin = build_plugin()
    runtimes = {}
    old = json.loads(dev_json.read_text()) if dev_json.exists() else {}
    for name in recipe["runtimes"]:  # keep runtimes built earlier (e.g. opt-in ones) if still current
        if name in want or name in old.get("runtimes", {}):
            runtimes[name] = build_runtime(name, recipe["runtimes"][name], recipe, qemu)
            runtimes[name]["sites"] = [str(DEVICE / "site" / n) for n in [name] + runtimes[name]["needs"]]
    qemu_version = run([qemu, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    info = {"recipe_hash": recipe_hash(), "qemu": qemu, "qemu_version": qemu_version,
            "sysroot": str(SYSROOT), "sysroot_bytes": dir_bytes(SYSROOT),
            "guest_python": str(SYSROOT) + recipe["guest_python"], "plugin": str(plugin),
            "cpus": {c: dict(v, root=str(DEVICE / "cpu" / c)) for c, v in cpus.items()},
            "runtimes": runtimes, "built": time.time()}
    tmp = dev_json.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, dev_json)
    log(f"device ready ({time.time() - t0:.0f} s): {', '.join(runtimes)} on {', '.join(cpus)}")


if __name__ == "__main__":
    main()

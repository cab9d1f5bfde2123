"""Packaging: desktop/metainfo files validate, icons exist at every size, the per-user install script
creates exactly what its manifest lists and the uninstall script removes exactly that, and the bundle's
launcher sends CLI calls to the CLI and everything else to the window.

The bundle itself is built and smoke-tested by packaging/ci_bundle.sh, not here (it takes minutes).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from denoiser import APP_ID

ROOT = Path(__file__).resolve().parents[2]
LINUX = ROOT / "packaging" / "linux"
DESKTOP = LINUX / f"{APP_ID}.desktop"
METAINFO = LINUX / f"{APP_ID}.metainfo.xml"
ICONS = ROOT / "resources" / "icons"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install desktop-file-utils appstream)")
    return path


def desktop_entry(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:] if "=" in line and not line.startswith("#"))


# --- the metadata files -------------------------------------------------------------------------------------

def test_desktop_file_validates():
    done = subprocess.run([need("desktop-file-validate"), str(DESKTOP)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_metainfo_validates():
    done = subprocess.run([need("appstreamcli"), "validate", "--no-net", "--explain", str(METAINFO)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_desktop_file_opens_our_formats_and_names_our_icon():
    entry = desktop_entry(DESKTOP)
    assert entry["Icon"] == APP_ID
    assert entry["Exec"].endswith(" %F")
    assert {"Graphics", "Photography"} <= set(entry["Categories"].rstrip(";").split(";"))
    mime = set(entry["MimeType"].rstrip(";").split(";"))
    assert {"image/jpeg", "image/png", "image/tiff", "image/webp", "image/bmp"} <= mime
    assert {"image/x-adobe-dng", "image/x-canon-cr2", "image/x-nikon-nef", "image/x-sony-arw"} <= mime


def test_metainfo_matches_the_desktop_file_and_package_version():
    from denoiser import __version__

    root = ET.parse(METAINFO).getroot()
    assert root.findtext("id") == APP_ID
    assert root.find("launchable").text == DESKTOP.name
    assert root.find("provides/binary").text == "photo-denoiser"
    assert root.find("content_rating") is not None
    assert __version__ in [r.get("version") for r in root.iter("release")]
    assert root.find("screenshots/screenshot/image").text.startswith("https://")


def test_icons_exist_at_every_size():
    from PIL import Image

    svg = (ICONS / f"{APP_ID}.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and 'viewBox="0 0 256 256"' in svg
    for size in PNG_SIZES:
        with Image.open(ICONS / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png") as png:
            assert png.size == (size, size) and png.mode == "RGBA"
            assert png.getpixel((0, 0))[3] == 0 and png.getpixel((size // 2, size // 2))[3] == 255
    assert (ICONS / f"{APP_ID}.ico").stat().st_size > 0 and (ICONS / f"{APP_ID}.icns").stat().st_size > 0


# --- install.sh / uninstall.sh --------------------------------------------------------------------------------

def snapshot(top: Path) -> tuple[set[str], set[str]]:
    files, dirs = set(), set()
    for path in top.rglob("*"):
        (dirs if path.is_dir() and not path.is_symlink() else files).add(str(path))
    return files, dirs


def read_manifest(path: Path) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {"file": set(), "link": set(), "dir": set(), "cache": set()}
    for line in path.read_text(encoding="utf-8").splitlines():
        kind, target = line.split(" ", 1)
        kinds[kind].add(target)
    return kinds


@pytest.fixture
def fake_bundle(tmp_path: Path) -> Path:
    exe = tmp_path / "bundle dir" / "photo-denoiser"  # a space, to check the Exec= quoting
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


def run_script(name: str, home: Path, *args: str, data_home: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env["HOME"] = str(home)
    if data_home is not None:
        env["XDG_DATA_HOME"] = str(data_home)
    return subprocess.run(["sh", str(LINUX / name), *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.slow  # runs the install and uninstall scripts
@pytest.mark.parametrize("xdg", [False, True], ids=["default-data-home", "XDG_DATA_HOME"])
def test_install_creates_exactly_the_manifest_and_uninstall_removes_it(tmp_path, fake_bundle, xdg):
    home = tmp_path / "home"
    home.mkdir()
    (home / "photos").mkdir()  # something of the user's that must survive
    data = tmp_path / "xdg data" if xdg else home / ".local" / "share"
    watched = tmp_path  # both HOME and XDG_DATA_HOME live under it
    before = snapshot(watched)

    done = run_script("install.sh", home, "--exec", str(fake_bundle), data_home=data if xdg else None)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = read_manifest(data / "photo-denoiser" / "install-manifest.txt")
    files, dirs = snapshot(watched)
    assert files - before[0] == manifest["file"] | manifest["link"] | manifest["cache"]
    assert dirs - before[1] == manifest["dir"]
    for kind in ("file", "link", "dir"):  # and it printed each one it made
        for target in manifest[kind]:
            assert f"{kind} {target}" in done.stdout

    desktop = data / "applications" / f"{APP_ID}.desktop"
    entry = desktop_entry(desktop)
    assert entry["Exec"] == f'"{fake_bundle}" %F' and entry["TryExec"] == str(fake_bundle)
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg").is_file()
    assert (data / "icons" / "hicolor" / "48x48" / "apps" / f"{APP_ID}.png").is_file()
    assert (data / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    assert os.readlink(home / ".local" / "bin" / "photo-denoiser") == str(fake_bundle)
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout

    done = run_script("uninstall.sh", home, data_home=data if xdg else None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert snapshot(watched) == before


@pytest.mark.slow  # runs the install and uninstall scripts
def test_reinstall_replaces_the_previous_install(tmp_path, fake_bundle):
    home = tmp_path / "home"
    home.mkdir()
    assert run_script("install.sh", home, "--exec", str(fake_bundle)).returncode == 0
    first = snapshot(home)
    done = run_script("install.sh", home, "--exec", str(fake_bundle))
    assert done.returncode == 0 and "Removing the previous install" in done.stdout
    assert snapshot(home) == first


@pytest.mark.slow  # runs the install and uninstall scripts
def test_uninstall_keeps_user_models_and_other_apps(tmp_path, fake_bundle):
    home = tmp_path / "home"
    data = home / ".local" / "share"
    user_model = data / "photo-denoiser" / "models" / "mine.safetensors"
    other_app = data / "applications" / "other.desktop"
    for path in (user_model, other_app):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"user data")
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "photo-denoiser").write_text("someone else's")  # not ours: left alone

    assert run_script("install.sh", home, "--exec", str(fake_bundle)).returncode == 0
    done = run_script("uninstall.sh", home)
    assert done.returncode == 0, done.stderr
    assert user_model.read_bytes() == b"user data" and other_app.read_bytes() == b"user data"
    assert (home / ".local" / "bin" / "photo-denoiser").read_text() == "someone else's"
    assert not (data / "applications" / f"{APP_ID}.desktop").exists()
    assert not (data / "photo-denoiser" / "install-manifest.txt").exists()


@pytest.mark.slow  # runs the install and uninstall scripts
def test_uninstall_ignores_manifest_entries_outside_its_folders(tmp_path, fake_bundle):
    home = tmp_path / "home"
    home.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    assert run_script("install.sh", home, "--exec", str(fake_bundle)).returncode == 0
    manifest = home / ".local" / "share" / "photo-denoiser" / "install-manifest.txt"
    with manifest.open("a", encoding="utf-8") as f:
        f.write(f"file {precious}\nfile {home}/.local/share/../../../precious.txt\n")
    done = run_script("uninstall.sh", home)
    assert done.returncode == 0 and precious.read_text() == "keep me"
    assert "skipped (outside" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--exec", "/nonexistent/photo-denoiser"], "is not an executable file"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
])
def test_install_refuses_bad_arguments_and_writes_nothing(tmp_path, args, message):
    home = tmp_path / "home"
    home.mkdir()
    done = run_script("install.sh", home, *args)
    assert done.returncode != 0 and message in done.stderr
    assert not any(home.iterdir())


def test_uninstall_without_an_install_says_so(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    done = run_script("uninstall.sh", home)
    assert done.returncode == 1 and "nothing to uninstall" in done.stderr


# --- launcher and frozen guards -------------------------------------------------------------------------------

def load_launcher():
    spec = importlib.util.spec_from_file_location("launcher", ROOT / "packaging" / "launcher.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, cli", [
    ([], False),
    (["photo.jpg"], False),
    (["--smoke-test", "in.png", "out.png"], False),
    (["-v", "/pictures/denoise"], False),  # a file that happens to be named like a subcommand
    (["denoise", "in.png", "-o", "out.png"], True),
    (["-v", "batch", "in", "--out-dir", "out"], True),
    (["models"], True),
    (["--version"], True),
    (["--help"], True),
    (["holiday.jpg"], False),  # a bare file name that is not a subcommand
])
def test_launcher_sends_subcommands_to_the_cli_and_the_rest_to_the_window(argv, cli):
    assert load_launcher().wants_cli(argv) is cli


def test_launcher_knows_subcommands_missing_from_the_list(monkeypatch):
    """A module may add a second subcommand (train adds `pack`): the parser, not the list, decides."""
    import argparse

    import denoiser.cli

    def build_parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        sub.add_parser("denoise")
        sub.add_parser("extra-command")
        return parser

    monkeypatch.setattr(denoiser.cli, "build_parser", build_parser)
    launcher = load_launcher()
    assert launcher.wants_cli(["extra-command", "--help"]) is True
    assert launcher.wants_cli(["not-a-command"]) is False


def test_launcher_runs_the_cli(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["photo-denoiser", "--version"])
    with pytest.raises(SystemExit) as exit_info:
        load_launcher().main()
    assert exit_info.value.code == 0
    from denoiser import __version__

    assert __version__ in capsys.readouterr().out


def test_frozen_guards_replace_missing_streams(monkeypatch):
    from denoiser import frozen

    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    assert frozen.ensure_std_streams() == ["stdout", "stderr"]
    print("goes nowhere, without raising")
    sys.stdout.close()
    sys.stderr.close()
    assert not frozen.is_frozen() and frozen.bundle_dir() is None and frozen.executable_dir() is None

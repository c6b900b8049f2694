"""What the benchmarks share: reports written into docs pages, the command a report names, and
the peers' venvs made once per requirements file."""

from __future__ import annotations

import subprocess

import pytest

from lanesim_bench import common
from lanesim_bench.common import command, ensure_venv, write_report


def test_a_report_replaces_only_the_block_of_its_own_command(tmp_path):
    page = tmp_path / "bench.md"
    write_report(page, "python -m x --quick", "old quick figures")
    write_report(page, "python -m x", "full figures")
    page.write_text("# Title\n\nProse before.\n\n" + page.read_text() + "\nProse after.\n")
    write_report(page, "python -m x --quick", "new quick figures")
    text = page.read_text()
    assert "new quick figures" in text and "old quick figures" not in text
    assert "full figures" in text
    assert text.startswith("# Title\n\nProse before.") and text.endswith("Prose after.\n")
    assert text.count("<!-- report of `python -m x --quick`: begin -->") == 1


def test_a_report_of_a_new_command_is_appended_to_a_new_page(tmp_path):
    page = tmp_path / "docs" / "new.md"
    write_report(page, "python -m x", "figures")
    assert page.read_text() == ("<!-- report of `python -m x`: begin -->\nfigures\n"
                                "<!-- report of `python -m x`: end -->\n")


def test_the_command_a_report_names_leaves_out_where_it_was_written():
    assert command("lanesim_bench.bench_env", ["--quick", "--write", "docs/a.md", "--no-peer"]) == (
        "python -m lanesim_bench.bench_env --quick --no-peer")
    assert command("m", ["--write=docs/a.md", "--cases", "a"]) == "python -m m --cases a"


def _fake_venv(venv, requirements):
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    stamp = common.hashlib.sha256(requirements.read_bytes()).hexdigest()
    (venv / ".installed").write_text(stamp)


def test_a_venv_made_from_the_same_requirements_is_reused(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("highway-env==1.12.1\n")
    _fake_venv(tmp_path / "venv", requirements)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    assert ensure_venv(tmp_path / "venv", requirements) == tmp_path / "venv" / "bin" / "python"


def test_changed_requirements_rebuild_the_venv_with_torch_installed_first(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("highway-env==1.12.1\n")
    _fake_venv(tmp_path / "venv", requirements)
    requirements.write_text("# the peer\nhighway-env==1.12.1  # pinned\ntorch==2.13.0\n")
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **k: calls.append(cmd))
    ensure_venv(tmp_path / "venv", requirements)
    installs = [c[c.index("install") + 2:] for c in calls if "install" in c]
    assert installs == [["torch==2.13.0"], ["highway-env==1.12.1"]]
    assert (tmp_path / "venv" / ".installed").read_text() == common.hashlib.sha256(
        requirements.read_bytes()).hexdigest()

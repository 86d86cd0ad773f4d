"""The CLI behaves like its neighbours: global options anywhere, --version, exit codes by kind,
logging with -v/-q, progress bars on a terminal only, help with examples, shell completion."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import select
import shlex
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from compstore import Butler, __version__
from compstore.cli import COMMANDS_DOCUMENTED, build_parser, main, python_for
from compstore.cli._help import EXAMPLES
from compstore.testing.repository import copy_repository, make_calexp_repository
from compstore.testing.sky import make_exposure

TASKS_DIR = Path(__file__).resolve().parents[1] / "pipeline"
PIPELINE = "tasks:\n  recal:\n    class: pipeline_test_tasks:Recalibrate\n"


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    exposures = {(1, d): make_exposure(1, d, size=32) for d in (0, 1)}
    return make_calexp_repository(tmp_path_factory.mktemp("cli") / "repo", exposures)


@pytest.fixture
def repo(tmp_path, _template):
    root = tmp_path / "repo"
    copy_repository(_template, root)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    return root


def _damage(repo: Path) -> None:
    """Delete one component of a calexp (what verify must report)."""
    butler = Butler(repo)
    ref = butler.find_dataset("calexp", visit=1, detector=1, collections="sfm")
    manifest = butler._io.manifest(ref.manifest)
    butler.blobs.delete(manifest["components"]["calib"]["document"])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TASKS_DIR), *sys.path])}


def _cli(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compstore", *argv], capture_output=True,
                          text=True, check=False, env=_env(), **kwargs)


# -- global options --------------------------------------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"compstore {__version__}"


def test_global_options_before_or_after_the_command(repo, capsys):
    assert main(["--repo", str(repo), "stats"]) == 0  # what users type first
    assert "datasets" in capsys.readouterr().out
    assert python_for(["--repo", "a", "stats"]) == python_for(["stats", "--repo", "a"])
    assert "Butler('b')" in python_for(["--repo", "a", "stats", "--repo", "b"])  # the later wins
    assert python_for(["--json", "query", "calexp"]) == python_for(["query", "calexp", "--json"])
    args = build_parser().parse_args(["-q", "--no-progress", "--python", "stats"])
    assert args.quiet and args.no_progress and args.python and args.verbose == 0
    # given after the command, a flag's default does not undo it given before
    assert build_parser().parse_args(["--python", "stats"]).python is True


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["no-such-command"])
    assert stop.value.code == 2
    with pytest.raises(SystemExit) as stop:
        main(["run", "-p", "x.yaml", "-i", "sfm", "-o", "out", "-c", "nonsense"])
    assert stop.value.code == 2 and "LABEL:KEY=VALUE" in capsys.readouterr().err


# -- exit codes ------------------------------------------------------------------------
def test_exit_codes_by_kind(repo, tmp_path, capsys):
    r = ["--repo", str(repo)]
    assert main(["get", *r, "calexp", "visit=9", "detector=0"]) == 3  # no such dataset
    assert main(["get", *r, "nosuchtype", "visit=1"]) == 3  # no such dataset type
    assert main(["query", *r, "calexp", "--collections", "nowhere"]) == 3  # no such collection
    assert main(["stats", "--repo", str(tmp_path / "missing")]) == 3  # no repository
    assert main(["ingest", *r, "calexp", str(tmp_path / "missing.fits"), "--run", "raw",
                 "--data-id", "visit=1,detector=5"]) == 3  # no such input file
    assert main(["query", *r, "calexp", "--where", "visit = = 1"]) == 1  # a compstore error
    assert main(["create", *r]) == 1  # exists already
    err = capsys.readouterr().err
    assert "Traceback" not in err and "missing.fits" in err
    assert main(["verify", *r]) == 0
    _damage(repo)
    assert main(["verify", *r]) == 4  # damage found
    assert "1 problem(s)" in capsys.readouterr().out


def test_printed_python_exits_like_the_command(repo, tmp_path):
    """The Python --python prints, run as a script, exits with the command's status."""
    pipeline = str(repo.parent / "pipeline.yaml")
    cases = [
        (["verify", "--repo", str(repo)], 0),
        (["run", "--repo", str(repo), "-p", pipeline, "-i", "sfm", "-o", "ok"], 0),
        (["run", "--repo", str(repo), "-p", pipeline, "-i", "sfm", "-o", "bad",
          "-c", "recal:fail_detector=1"], 1),
    ]
    for argv, expected in cases:
        code = _cli(*argv, "--python").stdout
        script = tmp_path / "printed.py"
        script.write_text(code)
        assert _cli(*argv).returncode == expected, argv
        # another output run for the printed Python, so it does the work again
        script.write_text(code.replace("run='ok'", "run='ok2'").replace("run='bad'", "run='bad2'"))
        ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             check=False, env=_env())
        assert ran.returncode == expected, (argv, ran.stderr)
    _damage(repo)
    code = _cli("verify", "--repo", str(repo), "--json", "--python").stdout
    assert _cli("verify", "--repo", str(repo), "--json").returncode == 4
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert ran.returncode == 4, ran.stderr


# -- logging ---------------------------------------------------------------------------
def test_verbose_logs_and_quiet_does_not(repo, capsys):
    r = ["--repo", str(repo)]
    assert main(["get", *r, "calexp.calib", "visit=1", "detector=0"]) == 0
    assert "compstore: " not in capsys.readouterr().err  # warnings only by default
    assert main(["-v", "get", *r, "calexp.calib", "visit=1", "detector=0"]) == 0
    err = capsys.readouterr().err
    assert "INFO: compstore.butler: opened repository" in err and "DEBUG" not in err
    assert main(["get", *r, "calexp.calib", "visit=1", "detector=0", "-vv"]) == 0
    assert "DEBUG: compstore.butler: get calexp.calib {'detector': 0, 'visit': 1} from run 'sfm'" in capsys.readouterr().err
    assert main(["-q", "-vv", "get", *r, "calexp.calib", "visit=1", "detector=0"]) == 0
    assert capsys.readouterr().err == ""
    # main leaves no handler behind: the library never configures logging itself
    assert logging.getLogger("compstore").handlers == []


def test_run_logs_units_at_info(repo, capsys):
    argv = ["run", "--repo", str(repo), "-p", str(repo.parent / "pipeline.yaml"), "-i", "sfm",
            "-o", "out", "-v"]
    sys.path.insert(0, str(TASKS_DIR))
    try:
        assert main(argv) == 0
    finally:
        sys.path.remove(str(TASKS_DIR))
    err = capsys.readouterr().err
    assert "task recal: 2 unit(s) to run" in err
    assert "succeeded recal {'detector': 0, 'visit': 1}" in err


# -- progress bars ---------------------------------------------------------------------
def _on_terminal(*argv: str) -> tuple[int, str]:
    """Run ``compstore ARGV`` with stderr on a pseudo-terminal; return (status, what it drew)."""
    master, slave = pty.openpty()
    # a fresh pseudo-terminal is 0 columns wide; tqdm would draw an empty bar
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "compstore", *argv], stdout=subprocess.DEVNULL,
                            stderr=slave, env=_env())
    os.close(slave)
    drawn = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    return proc.wait(timeout=60), drawn.decode(errors="replace")


def test_progress_bars_on_a_terminal_only(repo):
    status, drawn = _on_terminal("verify", "--repo", str(repo))
    assert status == 0 and "verify: 100%" in drawn and "2/2" in drawn
    status, drawn = _on_terminal("verify", "--repo", str(repo), "-q")
    assert status == 0 and "verify" not in drawn
    status, drawn = _on_terminal("run", "--repo", str(repo), "-p", str(repo.parent / "pipeline.yaml"),
                                 "-i", "sfm", "-o", "out")
    assert status == 0 and "run recal: 100%" in drawn
    not_a_terminal = _cli("verify", "--repo", str(repo))
    assert not_a_terminal.returncode == 0 and not_a_terminal.stderr == ""


def test_progress_flags_reach_the_python():
    assert "progress=True" in python_for(["verify"])
    for flag in ("-q", "--no-progress"):
        assert "progress" not in python_for(["verify", flag])
        assert "progress=False" in python_for(["ingest", "calexp", "a.fits", "--run", "r", flag])


# -- help and completion -------------------------------------------------------------
def test_help_explains_python_and_shows_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--python prints that" in out and "examples:" in out and "Exit status" in out
    for name in COMMANDS_DOCUMENTED:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert f"example:\n  compstore {name}" in capsys.readouterr().out, name


def test_every_help_example_parses():
    """The examples are real command lines: they parse and build their Python."""
    assert set(EXAMPLES) == set(COMMANDS_DOCUMENTED)
    for name, example in EXAMPLES.items():
        argv = shlex.split(example, comments=True)
        assert argv[:2] == ["compstore", name]
        compile(python_for(argv[1:]), f"<example {name}>", "exec")


def test_completion_hook(tmp_path):
    pytest.importorskip("argcomplete")
    out = tmp_path / "completions"
    line = "compstore query-c"
    env = {**_env(), "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out), "_ARGCOMPLETE_IFS": "\n"}
    done = subprocess.run([sys.executable, "-m", "compstore"], env=env, capture_output=True,
                          check=False)
    assert done.returncode == 0 and out.read_text().split() == ["query-collections"]
    line = "compstore verify --de"
    env.update(COMP_LINE=line, COMP_POINT=str(len(line)))
    subprocess.run([sys.executable, "-m", "compstore"], env=env, capture_output=True, check=False)
    assert out.read_text().split() == ["--deep"]


def test_completion_hook_is_harmless(repo, capsys, monkeypatch):
    # With argcomplete installed but no shell asking, and without argcomplete, commands run.
    assert main(["stats", "--repo", str(repo)]) == 0
    monkeypatch.setitem(sys.modules, "argcomplete", None)  # import fails
    assert main(["stats", "--repo", str(repo)]) == 0
    assert "datasets" in capsys.readouterr().out

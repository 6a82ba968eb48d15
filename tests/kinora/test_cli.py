import subprocess
import sys

import pytest
from typer.testing import CliRunner

from kinora.cli import app

COMMANDS = [[], ["demo"], ["seed"], ["serve"], ["dashboard"], ["verify"], ["settings"], ["campaign"], ["campaign", "run"],
            ["rights"], ["rights", "import"], ["db"], ["db", "migrate"], ["keys"], ["keys", "create"], ["keys", "list"],
            ["keys", "revoke"], ["rights", "screen"], ["rights", "rescreen"], ["consent"], ["consent", "verify-ledger"],
            ["consent", "export"], ["consent", "sweep"], ["events"], ["events", "import"], ["analytics"],
            ["analytics", "refresh"], ["analytics", "metrics"], ["status"], ["trace"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "kinora")
def test_every_command_has_help(cmd):
    result = CliRunner().invoke(app, [*cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_bad_campaign_file_is_one_line_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrequester: studio\nitems:\n  - id: a\n    prompt: hi\n    count: 0\n")
    proc = subprocess.run([sys.executable, "-m", "kinora.cli", "campaign", "run", str(bad)],
                          capture_output=True, text=True, env={"KINORA_HOME": str(tmp_path / "h"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {bad}: items[0].count: Input should be greater than or equal to 1"
    assert "Traceback" not in proc.stderr + proc.stdout


def test_rights_import_reports_the_line_and_imports_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("KINORA_HOME", str(tmp_path / "h"))
    f = tmp_path / "r.csv"
    f.write_text("holder,work,kind,aliases,description,policy,terms\nA,W,brand,,d,blocked,\nA,X,brand,,d,sometimes,\n")
    result = CliRunner().invoke(app, ["rights", "import", str(f)])
    assert result.exit_code == 2
    assert "line 3, field policy" in result.output
    ok = tmp_path / "ok.csv"
    ok.write_text("holder,work,kind,aliases,description,policy,terms\nA,W,brand,,d,blocked,\n")
    result = CliRunner().invoke(app, ["rights", "import", str(ok)])
    assert result.exit_code == 0 and "imported 1 works" in result.output


def test_bad_setting_is_one_line(monkeypatch):
    monkeypatch.setenv("KINORA_GENERATION__FPS", "1000")
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 2
    assert "generation.fps" in result.output


def test_keys_create_list_revoke(tmp_path, monkeypatch):
    monkeypatch.setenv("KINORA_HOME", str(tmp_path / "h"))
    runner = CliRunner()
    assert runner.invoke(app, ["seed"]).exit_code == 0
    created = runner.invoke(app, ["keys", "create", "--user", "alice", "--per-day", "5"])
    assert created.exit_code == 0
    key_id, secret = created.output.split()[1], created.output.splitlines()[1]
    assert secret.startswith("kin_") and len(secret) > 40
    listed = runner.invoke(app, ["keys", "list"]).output
    assert key_id in listed and secret not in listed and "5/day" in listed
    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    again = runner.invoke(app, ["keys", "revoke", key_id])
    assert again.exit_code == 2 and "no active key" in again.output
    bad = runner.invoke(app, ["keys", "create", "--user", "alice", "--scope", "root"])
    assert bad.exit_code == 2 and "unknown scopes" in bad.output


def test_analytics_refresh_and_metrics(tmp_path, monkeypatch):
    import json
    from datetime import UTC, datetime

    from kinora.stores.lake import Lake

    monkeypatch.setenv("KINORA_HOME", str(tmp_path / "h"))
    Lake(tmp_path / "h" / "lake").append("events", [dict(
        event_id="e1", ts=datetime(2026, 11, 20, tzinfo=UTC), user_id="u", video_id="v", event_type="view", watch_ms=5,
        batch_id="b")])
    runner = CliRunner()
    first = runner.invoke(app, ["analytics", "refresh"])
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout.strip().splitlines()[-1])
    assert out["days_rebuilt"]["events"] == 1 and out["catalog_rows"]["users"] == 0
    assert (tmp_path / "h" / "analytics" / "rollups" / "user_day" / "2026-11-20.parquet").is_file()
    again = json.loads(runner.invoke(app, ["analytics", "refresh"]).stdout.strip().splitlines()[-1])
    assert again["days_rebuilt"]["events"] == 0
    full = json.loads(runner.invoke(app, ["analytics", "refresh", "--full"]).stdout.strip().splitlines()[-1])
    assert full["days_rebuilt"]["events"] == 1
    listed = runner.invoke(app, ["analytics", "metrics"])
    assert listed.exit_code == 0 and "weekly retention" in listed.output and "grain: cohort x week" in listed.output

"""The `drg` command, as an operator uses it from a shell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from generator.cli import cli

runner = CliRunner()


def test_validate_accepts_a_corpus_payload(corpus: Path) -> None:
    result = runner.invoke(cli, ["validate", str(corpus / "default.json")])
    assert result.exit_code == 0, result.output
    assert "valid: 4 tables, 17 operations" in result.output  # the six many-to-many routes included


def test_validate_prints_every_problem_with_its_pointer_and_fails(corpus: Path) -> None:
    result = runner.invoke(cli, ["validate", str(corpus / "foreign_key_missing_table.json")])
    assert result.exit_code == 1
    assert "/foreignKeys/0/fields" in result.output
    assert "/foreignKeys/0/reference/resource" in result.output


def test_validate_says_when_the_file_is_not_json(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = runner.invoke(cli, ["validate", str(broken)])
    assert result.exit_code == 2
    assert "Cannot read" in result.output


def test_generate_applies_a_payload_to_the_configured_database(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("PAYLOAD_PATH", str(tmp_path / "payload.json"))
    first = runner.invoke(cli, ["generate", str(corpus / "default.json")])
    assert first.exit_code == 0, first.output
    assert "applied" in first.output and "people" in first.output
    assert {"people", "team", "order", "required", "people_team"} <= set(
        inspect(create_engine(f"sqlite:///{database}")).get_table_names()
    )
    assert json.loads((tmp_path / "payload.json").read_text())["data_resource_schema"]["name"] == "2020 Census Data"
    again = runner.invoke(cli, ["generate", str(corpus / "default.json")])
    assert again.exit_code == 0 and "already applied" in again.output


def test_db_upgrade_migrates_the_platform_tables_once_and_current_reports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from generator.migrations import head

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    before = runner.invoke(cli, ["db", "current"])
    assert before.exit_code == 0, before.output
    assert f"none (head is {head()}: run `drg db upgrade`" in before.output
    first = runner.invoke(cli, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert f"upgraded the platform's tables from none to {head()}" in first.output
    assert "drg_generations" in inspect(create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")).get_table_names()
    again = runner.invoke(cli, ["db", "upgrade"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    after = runner.invoke(cli, ["db", "current"])
    assert after.exit_code == 0 and after.output.strip() == f"{head()} (head)"


@pytest.mark.parametrize("command", ["upgrade", "current"])
def test_db_commands_say_when_the_database_is_unreachable(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/nothing?connect_timeout=2")
    result = runner.invoke(cli, ["db", command])
    assert result.exit_code == 1
    assert ("Upgrade failed" if command == "upgrade" else "Cannot read the revision") in result.output
    assert "Traceback" not in result.output

"""The command line of users, keys and the audit log; backup and restore on a real cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from typer.testing import CliRunner

from gridcore.cli import app
from layers.db.backup import backup, restore
from layers.security import audit
from tests.support.database import row_counts

runner = CliRunner()


def _run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env)


def test_users_keys_and_audit_commands(db: Engine, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "GRIDCORE_NEW_PASSWORD": "correct horse battery"}
    out = _run("users", "add", "wang", "--role", "grid_worker", "--area", "320582110152102",
               env=env)
    assert out.exit_code == 0, out.output
    refused = _run("users", "add", "li", "--role", "grid_worker", "--area", "12", env=env)
    assert refused.exit_code != 0 and "6 (district)" in str(refused.exception or refused.output)
    assert _run("users", "disable", "wang", env=env).exit_code == 0
    listed = json.loads(_run("users", "list", "--json", env=env).output)
    assert listed == [{"username": "wang", "role": "grid_worker", "department": None,
                       "areas": ["320582110152102"], "disabled": True, "display_name": "",
                       "worker_code": None}]
    # the account's worker of the register (its patrols count for that worker)
    with db.begin() as conn:
        conn.execute(text("INSERT INTO grid_worker (code, name) VALUES ('W0012', '王芳')"))
    linked = _run("users", "link-worker", "wang", "W0012", env=env)
    assert linked.exit_code == 0 and "W0012" in linked.output, linked.output
    unknown = _run("users", "link-worker", "wang", "W404", env=env)
    assert unknown.exit_code != 0 and "W404" in str(unknown.exception or unknown.output)
    assert "W0012" in _run("users", "list", env=env).output
    assert _run("users", "link-worker", "wang", env=env).exit_code != 0  # code or --unlink
    assert _run("users", "link-worker", "wang", "--unlink", env=env).exit_code == 0

    key = _run("keys", "add", "sensor-net", "--purpose", "iot", env=env).output.strip()
    assert key.startswith("gck_")
    assert _run("keys", "revoke", key.split("_")[1], env=env).exit_code == 0

    # the commands' background sealers may not have chained their last rows yet: seal them
    # here (verify never seals), so the count below does not race them
    audit.seal(db)
    ok = _run("audit", "verify", env=env)
    # add, disable, link, unlink, key add, key revoke
    assert ok.exit_code == 0 and "6 rows" in ok.output, ok.output
    with db.begin() as conn:
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        conn.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2"))
        conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
    broken = _run("audit", "verify", "--json", env=env)
    assert broken.exit_code == 1
    assert json.loads(broken.output)["first_broken_seq"] == 2


def test_backup_and_restore_round_trip(db: Engine, database_url: str, admin_url: str,
                                       tmp_path: Path) -> None:
    with db.begin() as conn:
        conn.execute(text("INSERT INTO department (code, name) VALUES ('D01', '市政')"))
        audit.record(conn, "admin", "department.add", "department:D01")
    audit.seal(db)  # verify checks what is sealed; it never seals itself
    dump = backup(tmp_path / "gridcore.dump", url=database_url)
    assert dump.read_bytes()[:5] == b"PGDMP"

    name = make_url(database_url).database + "_restored"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    target_url = make_url(database_url).set(database=name).render_as_string(
        hide_password=False)
    target = create_engine(target_url)
    try:
        restore(dump, url=target_url)
        assert row_counts(target) == row_counts(db)
        assert audit.verify(target).ok and audit.verify(target).rows == 1
        with pytest.raises(Exception, match="not a pg_dump"):
            (tmp_path / "fake.dump").write_bytes(b"hello")
            restore(tmp_path / "fake.dump", url=target_url)
    finally:
        target.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

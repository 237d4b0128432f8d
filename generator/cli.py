"""The `drg` command: serve the API, validate / apply a payload, or migrate the platform's tables from the shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from generator.errors import GeneratorError, InvalidPayload

cli = typer.Typer(help="Data Resource Generator: database and REST API as configuration.", no_args_is_help=True)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        typer.secho(f"Cannot read {path}: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Run the service with uvicorn (SQLite under ./data unless DATABASE_URL is set)."""
    import uvicorn

    uvicorn.run("wsgi:app", host=host, port=port, workers=workers, app_dir=str(Path(__file__).parent.parent))


@cli.command()
def validate(payload: Path) -> None:
    """Check a generation payload offline; print every problem with its JSON pointer."""
    from generator.payload import parse_payload

    try:
        generation = parse_payload(_read(payload))
    except InvalidPayload as exc:
        for issue in exc.issues:
            typer.echo(f"{issue.pointer or '/'}: {issue.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"valid: {len(generation.resources)} tables, {len(generation.operations)} operations")
    for warning in generation.warnings:
        typer.echo(f"warning: {warning}")


@cli.command()
def generate(payload: Path) -> None:
    """Apply a payload to the configured database and save it, as POST /generator would."""
    from generator.app import create_app

    try:
        outcome = create_app().runtime.generate(_read(payload))
    except GeneratorError as exc:
        typer.secho(f"Generation failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    state = "applied" if outcome.changed else "already applied"
    typer.echo(f"{state}: {outcome.generation.digest[:12]}, created {', '.join(outcome.created_tables) or 'nothing'}")


@cli.command("rotate-keys")
def rotate_keys(
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction")] = 500,
    dry_run: Annotated[bool, typer.Option(help="Only count the rows holding a value to rotate")] = False,
) -> None:
    """Re-encrypt protected values not under their field's current key (and their blind indexes), in
    batches, while the service serves. Uses DATABASE_URL and the key variables, as the service does; safe
    to stop and run again."""
    from generator.config import Settings
    from generator.models.engine import create_database_engine
    from generator.rotation import TableRotation, rotate_keys

    def progress(table: TableRotation) -> None:
        typer.echo(f"{table.table}: {table.rows} rows rotated ({table.batches} batches)")

    engine = create_database_engine(Settings.from_env())
    try:
        result = rotate_keys(engine, batch_size=batch_size, dry_run=dry_run, on_batch=progress)
    except GeneratorError as exc:
        typer.secho(f"Rotation failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    verb = "to rotate" if dry_run else "rotated"
    for table, name in result.rewrapped:
        state = "to re-wrap" if dry_run else "re-wrapped"
        typer.echo(f"{table}.{name}: blind-index key {state} under the current KMS key")
    for table in result.tables:
        failed = f", {table.failed} values could not be decrypted (left as they are)" if table.failed else ""
        typer.echo(f"{table.table}: {table.rows} rows {verb}{failed}")
    typer.echo(f"{'dry run' if dry_run else 'done'}: {result.rows} rows {verb} in {len(result.tables)} tables")
    if result.failed:
        typer.secho(f"{result.failed} values decrypt under no configured key: check key and previousKeys",
                    fg="red", err=True)
        raise typer.Exit(1)


db = typer.Typer(help="The platform's own tables (drg_*): their migrations.", no_args_is_help=True)
cli.add_typer(db, name="db")


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the platform's tables in DATABASE_URL to the newest revision.

    Every start-up does it too; run it before rolling out a new release to migrate once, ahead of the
    replicas. Safe to run again, and while the service runs."""
    from generator.config import Settings
    from generator.migrations import head, is_newer, upgrade
    from generator.models.engine import create_database_engine

    settings = Settings.from_env()
    engine = create_database_engine(settings)
    try:
        result = upgrade(engine, lock_timeout_ms=settings.lock_timeout_ms)
    except (GeneratorError, SQLAlchemyError) as exc:
        typer.secho(f"Upgrade failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if result.changed:
        typer.echo(f"upgraded the platform's tables from {result.before or 'none'} to {result.after}")
    elif is_newer(result.after):
        typer.echo(f"the platform's tables are at {result.after}, newer than this release's head {head()}: "
                   "left as they are")
    else:
        typer.echo(f"the platform's tables are at {result.after}, the newest revision: nothing to do")


@db.command("current")
def db_current() -> None:
    """Print the platform tables' revision and the newest one this release has."""
    from generator.config import Settings
    from generator.migrations import current, head, is_newer
    from generator.models.engine import create_database_engine

    engine = create_database_engine(Settings.from_env())
    try:
        revision = current(engine)
    except SQLAlchemyError as exc:
        typer.secho(f"Cannot read the revision: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if revision == head():
        typer.echo(f"{revision} (head)")
    elif is_newer(revision):
        typer.echo(f"{revision} (newer than this release's head {head()}: a newer release migrated the database)")
    else:
        typer.echo(f"{revision or 'none'} (head is {head()}: run `drg db upgrade`, or start the service)")


def main() -> None:
    sys.exit(cli())

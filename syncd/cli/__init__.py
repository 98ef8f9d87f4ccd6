"""The ``syncd`` command line: one module per command group, one error path for all of them.

Every ``SyncdError`` becomes one clear line on stderr and a non-zero exit (2 for configuration,
1 otherwise); a traceback is a bug. Logs go to stderr too, so data commands keep stdout clean.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from syncd import __version__
from syncd.cli._context import AppContext
from syncd.cli.auth_cmds import auth
from syncd.cli.config_cmds import check_config
from syncd.cli.connectors_cmds import connectors
from syncd.cli.db_cmds import db
from syncd.cli.demo_cmds import demo
from syncd.cli.export_cmds import export
from syncd.cli.payments_cmds import payments, payouts_group, push
from syncd.cli.review_cmds import link, quarantine, review, unlink
from syncd.cli.run_cmds import run
from syncd.cli.sandbox_cmds import sandbox
from syncd.cli.status_cmds import status
from syncd.cli.sync_cmds import sync
from syncd.errors import ConfigError, SyncdError
from syncd.redact import REDACTOR

EXIT_CONFIG = 2
EXIT_FAILED = 1


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="SYNCD_CONFIG",
    default="config.toml",
    show_default=True,
    help="The TOML configuration file (also $SYNCD_CONFIG).",
)
@click.version_option(__version__, prog_name="syncd")
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """syncd pulls customers and invoices from your PSA and accounting systems into one store,
    and pushes the payments your customers made back to them exactly once.

    Start with `syncd demo` to see it work against bundled sandboxes, then copy
    config.example.toml to config.toml and run `syncd check-config`.
    """
    ctx.obj = AppContext(config_path=config_path)
    ctx.call_on_close(ctx.obj.close)


for command in (
    check_config,
    db,
    sync,
    push,
    run,
    status,
    export,
    payments,
    payouts_group,
    connectors,
    demo,
    sandbox,
    auth,
    review,
    link,
    unlink,
    quarantine,
):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: run the CLI and turn syncd errors into clean exits."""
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("syncd: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"syncd: config error: {REDACTOR.redact(problem)}", err=True)
        sys.exit(EXIT_CONFIG)
    except SyncdError as exc:
        click.echo(f"syncd: error: {REDACTOR.redact(str(exc))}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("syncd: interrupted", err=True)
        sys.exit(130)

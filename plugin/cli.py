"""Entry point of `kubectl-longhorn_bi`, and the one place errors become messages."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from longhorn_bi import __version__
from longhorn_bi.engine.errors import ExitCode, LonghornBIError
from longhorn_bi.plugin.lazy import LazyGroup

PROG_NAME = "kubectl longhorn-bi"

# One line per subcommand: "name": "module:attribute". Modules load only when used.
SUBCOMMANDS = {
    "backup": "longhorn_bi.plugin.generate:backup",
    "restore": "longhorn_bi.plugin.generate:restore",
    "validate": "longhorn_bi.plugin.validate:validate",
    "rules": "longhorn_bi.plugin.validate:rules",
    "list": "longhorn_bi.plugin.cluster_cmds:list_backups",
    "describe": "longhorn_bi.plugin.cluster_cmds:describe",
    "completion": "longhorn_bi.plugin.completion:completion",
    "store": "longhorn_bi.plugin.store:store",
    "checksum": "longhorn_bi.plugin.checksum:checksum",
}
# Shell completion's environment variable; click would derive one with a space from PROG_NAME.
COMPLETE_VAR = "_KUBECTL_LONGHORN_BI_COMPLETE"


@click.group(
    cls=LazyGroup,
    lazy_subcommands=SUBCOMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name=PROG_NAME)
@click.option(
    "--debug", is_flag=True, envvar="LONGHORN_BI_DEBUG", help="Show tracebacks of errors."
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Back up and restore Longhorn backing images safely.

    Generate and validate BackupBackingImage and restore BackingImage manifests, apply them,
    and work on a backupstore directly.
    """
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; expected errors print one clean message, never a traceback."""
    if argv is None and Path(sys.argv[0]).name.startswith("kubectl_complete-"):
        # Linked as kubectl's completion executable (e.g. by krew users): answer that.
        from longhorn_bi.plugin.completion import kubectl_complete

        kubectl_complete()
        return
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        # Without standalone mode click returns the code of ctx.exit() instead of exiting.
        result = cli.main(
            args=argv, prog_name=PROG_NAME, complete_var=COMPLETE_VAR, standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(ExitCode.FAILURE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LonghornBIError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"  hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(ExitCode.FAILURE)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else ExitCode.OK)


if __name__ == "__main__":
    main()

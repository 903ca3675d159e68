"""Entry point of `kubectl-longhorn_bi`, and the one place errors become messages."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from longhorn_bi.engine.errors import ExitCode, LonghornBIError
from longhorn_bi.plugin.completion import kubectl_complete
from longhorn_bi.plugin.root import COMPLETE_VAR, PROG_NAME, cli


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; expected errors print one clean message, never a traceback."""
    if argv is None and Path(sys.argv[0]).name.startswith("kubectl_complete-"):
        # Linked as kubectl's completion executable (e.g. by krew users): answer that.
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

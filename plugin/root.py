"""The root command group of `kubectl-longhorn_bi` and its table of lazy subcommands.

Its own module so that completion.py (which completes this group) and cli.py (whose main
answers kubectl's completion hook) both import it, and not each other.
"""

from __future__ import annotations

import click

from longhorn_bi import __version__
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
    "verify": "longhorn_bi.plugin.verify:verify",
    "policy": "longhorn_bi.plugin.policy:policy",
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

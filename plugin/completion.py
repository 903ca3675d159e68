"""Shell completion: `completion bash|zsh|fish`, and kubectl's plugin completion hook.

kubectl (1.26+) completes `kubectl longhorn-bi <TAB>` by running the executable
`kubectl_complete-longhorn_bi` with the words typed after the plugin's name, the last one
being the word to complete (possibly empty). It expects one candidate per line (a tab
may separate a description), optionally followed by a last line `:<directive>` in the
encoding of cobra's ShellCompDirective. Candidates come from click's own completion of the
same command tree, so both paths always agree with the CLI.
"""

from __future__ import annotations

import sys

import click

from longhorn_bi.plugin.root import COMPLETE_VAR, PROG_NAME, cli

SCRIPT_NAME = "kubectl-longhorn_bi"

# cobra's ShellCompDirective bits, as kubectl reads them from the last line.
DIRECTIVE_ERROR = 1
DIRECTIVE_NO_FILE_COMP = 4
DIRECTIVE_FILTER_DIRS = 16
DIRECTIVE_DEFAULT = 0  # let the shell complete file names


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script of kubectl-longhorn_bi for SHELL.

    \b
      bash:  source <(kubectl longhorn-bi completion bash)
      zsh:   source <(kubectl longhorn-bi completion zsh)
      fish:  kubectl longhorn-bi completion fish | source

    `kubectl longhorn-bi <TAB>` needs no script: kubectl 1.26+ asks the
    kubectl_complete-longhorn_bi executable installed beside the plugin.
    """
    from click.shell_completion import get_completion_class

    shell_class = get_completion_class(shell)
    if shell_class is None:  # pragma: no cover - click ships all three
        raise click.UsageError(f"no completion for {shell}")
    click.echo(shell_class(cli, {}, SCRIPT_NAME, COMPLETE_VAR).source())


def candidates(words: list[str]) -> tuple[list[str], int]:
    """kubectl's plugin completion answer for `words` (the last is being completed)."""
    from click.shell_completion import ShellComplete

    args, incomplete = (words[:-1], words[-1]) if words else ([], "")
    items = ShellComplete(cli, {}, PROG_NAME, COMPLETE_VAR).get_completions(args, incomplete)
    directive = DIRECTIVE_NO_FILE_COMP
    lines: list[str] = []
    for item in items:
        if item.type == "file":
            directive = DIRECTIVE_DEFAULT
        elif item.type == "dir":
            directive = DIRECTIVE_FILTER_DIRS
        else:
            help_text = " ".join(str(item.help or "").split())
            lines.append(f"{item.value}\t{help_text}" if help_text else str(item.value))
    return lines, directive


def kubectl_complete(argv: list[str] | None = None) -> None:
    """Entry point of `kubectl_complete-longhorn_bi`."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        lines, directive = candidates(words)
    except Exception:  # a completion never prints a traceback into the command line
        lines, directive = [], DIRECTIVE_ERROR
    for line in lines:
        sys.stdout.write(line + "\n")
    sys.stdout.write(f":{directive}\n")

"""``sbkube completion bash|zsh|fish``: the shell completion script.

Click generates it; what it completes (commands, options, deployment ids with
``latest``/``latest~N``, app names from the app dir's config.yaml, namespaces) comes from
the ``shell_complete`` functions in :mod:`sbkube.cli.options`.
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    Install:
      bash:  echo 'eval "$(sbkube completion bash)"' >> ~/.bashrc
      zsh:   echo 'eval "$(sbkube completion zsh)"' >> ~/.zshrc
      fish:  sbkube completion fish > ~/.config/fish/completions/sbkube.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # every choice is one of click's shells
    root = ctx.find_root().command
    comp = cls(root, {}, "sbkube", "_SBKUBE_COMPLETE")
    click.echo(comp.source())

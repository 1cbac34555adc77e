"""`python -m zoolens.cli`: the `zoolens` program (as torchrun and the tests start it)."""

from zoolens.cli.program import run

run()

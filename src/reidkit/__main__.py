"""`python -m reidkit` (what `torchrun -m reidkit` starts): the command line."""

from reidkit.cli import main

main()

"""From a resolved Config to library calls: training, evaluation, the quickstart and deployment. With
`cli.py`, the only readers of Config; everything below takes plain typed arguments."""

"""Training scripts: `python -m perceiver.scripts.<area>.<task> fit|validate|test --config ... [--print_config]`."""

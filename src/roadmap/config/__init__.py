"""Configuration: where the config files are (files.py), composing them into a checked RunConfig
(compose.py), the command line checked before Hydra writes anything (command_line.py), Hydra's
registrations (store.py), the config files parsed once per process (parsed.py), the roadmap's steps
from their files (steps.py), what undoing a step means (undo.py), run-directory variants
(variants.py) and tab completion (completion.py)."""

"""``python -m hub``: the ``hub`` command, for where the console script is not on PATH."""

from hub.cli import main

if __name__ == "__main__":
    main()

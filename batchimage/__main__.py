"""`python -m batchimage` runs the command line."""

from batchimage.cli import main

if __name__ == "__main__":
    main()

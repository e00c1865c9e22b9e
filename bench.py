#!/usr/bin/env python
"""`python bench.py ...` is the same CLI as `invobench ...`."""
from invobench.cli import main

if __name__ == "__main__":
    main()
